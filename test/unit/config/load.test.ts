import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../sidecar/proxy/config/errors.ts';
import { parseBootstrap } from '../../../sidecar/proxy/config/load.ts';

const base = `
listeners:
  - { name: out, port: 15001, direction: OUTBOUND, routeConfigName: r }
routes:
  - name: r
    virtualHosts:
      - { name: vh, domains: ["*"], routes: [{ name: all, route: { clusters: [{ name: c }] } }] }
clusters: [{ name: c }]
endpoints: [{ clusterName: c, endpoints: [{ address: 127.0.0.1, port: 8080 }] }]
`;

function problemsOf(text: string): readonly string[] {
  try {
    parseBootstrap(text, 'test.yaml');
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    return [(err as Error).message];
  }
  return [];
}

describe('bootstrap loading', () => {
  it('accepts a valid bootstrap', () => {
    expect(problemsOf(base)).toEqual([]);
  });

  it.each([
    ['an unknown top-level field', `${base}\nlistenerz: []`, 'listenerz: unknown field of Bootstrap'],
    [
      'a snake_case field name, with a hint',
      base.replace('routeConfigName', 'route_config_name'),
      'listeners[0].route_config_name: unknown field of Listener (did you mean "routeConfigName"?)',
    ],
    [
      'a port out of range',
      base.replace('15001', '-1'),
      'listeners[0].port: expected an integer 0..4294967295, got -1',
    ],
    ['a port above 65535', base.replace('15001', '70000'), 'Listener out: port: must be 0..65535'],
    [
      'an unknown enum name',
      base.replace('OUTBOUND', 'OUTWARD'),
      'listeners[0].direction: expected one of OUTBOUND',
    ],
    [
      'a string where a number belongs',
      base.replace('8080', '"http"'),
      'endpoints[0].endpoints[0].port: expected an integer',
    ],
    [
      'a listener naming a missing route config',
      base.replace('routeConfigName: r', 'routeConfigName: nope'),
      'Listener out: routeConfigName: no RouteConfiguration named "nope"',
    ],
    [
      'a route naming a missing cluster',
      base.replace('clusters: [{ name: c }] } }', 'clusters: [{ name: d }] } }'),
      'route.clusters: no Cluster named "d"',
    ],
    [
      'two actions on one route',
      base.replace('route: { clusters', 'directResponse: { status: 200 }, route: { clusters'),
      'only one of route, directResponse may be set',
    ],
    ['text that is not YAML', 'listeners: [', 'test.yaml: not valid YAML or JSON'],
  ])('rejects %s, naming the field and reason', (_name, text, expected) => {
    const problems = problemsOf(text);
    expect(
      problems.some((p) => p.includes(expected)),
      `${problems.join('\n')}\nshould mention: ${expected}`,
    ).toBe(true);
  });
});
