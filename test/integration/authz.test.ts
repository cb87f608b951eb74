/**
 * AuthorizationPolicy with real processes: a protected service behind a `weft sidecar` whose
 * inbound listener carries `rbac`, called by three services (allowed, denied, unlisted), each
 * through its own `weft sidecar`. The callers' sidecars say who they are with an `x-caller`
 * request header set on their route (a stand-in for the peer's SPIFFE principal until mTLS in the
 * data path lands; principal-based rules are covered by the unit tables).
 *
 * The protected sidecar's policy (Istio semantics: DENY first, then ALLOW enforced):
 * - DENY `deny-denied`: requests from the denied caller;
 * - DENY `deny-admin`: paths `/admin`, `/admin/*` (on the normalized path);
 * - ALLOW `allow-callers`: GET/HEAD on `/api/*` from the allowed and denied callers.
 * Denied requests get 403 with `x-weft-error: RBAC_DENIED` from the protected sidecar, never
 * reach the app, and count in `weft_requests_total{response_flags="RBAC_DENIED"}` and the access log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bootstrap, Rbac } from '../../sidecar/proxy/config/types.ts';
import { curl } from '../support/curl.ts';
import { echoOf, namedUpstream } from '../support/routing.ts';
import { type RunningSidecar, startSidecar } from '../support/sidecar.ts';
import type { Upstream } from '../support/upstream.ts';

const POLICY: Rbac = {
  deny: [
    { name: 'default/protected/deny-denied', when: [{ header: 'x-caller', values: ['denied'] }] },
    { name: 'default/protected/deny-admin', to: [{ paths: ['/admin', '/admin/*'] }] },
  ],
  allow: [
    {
      name: 'default/protected/allow-callers',
      to: [{ methods: ['GET', 'HEAD'], paths: ['/api/*'] }],
      when: [{ header: 'x-caller', values: ['allowed', 'denied'] }],
    },
  ],
  allowEnforced: true,
};

/** The protected service's sidecar: inbound listener with the policy, forwarding to the app. */
function protectedBootstrap(appPort: number): Bootstrap {
  return {
    node: { id: 'protected-1.default', service: 'protected', namespace: 'default', workload: 'protected-v1' },
    admin: { address: '127.0.0.1', port: 0 },
    listeners: [
      {
        name: 'inbound',
        address: '127.0.0.1',
        port: 0,
        direction: 'INBOUND',
        routeConfigName: 'inbound',
        rbac: POLICY,
      },
    ],
    routes: [
      {
        name: 'inbound',
        virtualHosts: [
          {
            name: 'inbound',
            domains: ['*'],
            routes: [{ name: 'inbound', route: { clusters: [{ name: 'app' }] } }],
          },
        ],
      },
    ],
    clusters: [{ name: 'app' }],
    endpoints: [{ clusterName: 'app', endpoints: [{ address: '127.0.0.1', port: appPort }] }],
  };
}

/** A caller's sidecar: outbound listener routing `protected` to the protected sidecar, saying who calls. */
function callerBootstrap(caller: string, protectedPort: number): Bootstrap {
  return {
    node: { id: `${caller}-1.default`, service: caller, namespace: 'default', workload: `${caller}-v1` },
    admin: { address: '127.0.0.1', port: 0 },
    listeners: [
      { name: 'outbound', address: '127.0.0.1', port: 0, direction: 'OUTBOUND', routeConfigName: 'outbound' },
    ],
    routes: [
      {
        name: 'outbound',
        virtualHosts: [
          {
            name: 'protected',
            domains: ['protected'],
            routes: [
              {
                name: 'protected',
                route: { clusters: [{ name: 'protected' }] },
                requestHeaderModifier: { set: [{ name: 'x-caller', value: caller }] },
              },
            ],
          },
        ],
      },
    ],
    clusters: [{ name: 'protected' }],
    endpoints: [{ clusterName: 'protected', endpoints: [{ address: '127.0.0.1', port: protectedPort }] }],
  };
}

interface Series {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** The `weft_requests_total` series of a Prometheus exposition. */
function requestSeries(exposition: string): Series[] {
  const out: Series[] = [];
  for (const line of exposition.split('\n')) {
    const m = /^weft_requests_total\{(.*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const [, name, value] of (m[1] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      labels[name as string] = value as string;
    }
    out.push({ labels, value: Number(m[2]) });
  }
  return out;
}

const CALLERS = ['allowed', 'denied', 'unlisted'] as const;
type Caller = (typeof CALLERS)[number];

describe('AuthorizationPolicy on a sidecar inbound listener', () => {
  let app: Upstream;
  let guard: RunningSidecar;
  const callers = {} as Record<Caller, RunningSidecar>;

  /** A request from `caller` to the protected service through the caller's sidecar. */
  function call(caller: Caller, path: string, args: readonly string[] = []) {
    return curl([
      '--path-as-is',
      '-H',
      'Host: protected',
      ...args,
      `${callers[caller].url('outbound')}${path}`,
    ]);
  }

  beforeAll(async () => {
    app = await namedUpstream('protected');
    guard = await startSidecar(protectedBootstrap(app.port), { extraArgs: ['--access-log'] });
    const port = guard.ports.inbound as number;
    await Promise.all(
      CALLERS.map(async (c) => {
        callers[c] = await startSidecar(callerBootstrap(c, port));
      }),
    );
  });

  afterAll(async () => {
    await Promise.all(Object.values(callers).map((s) => s.stop()));
    await guard?.stop();
    await app?.close();
  });

  it('lets the allowed service GET /api/*', async () => {
    const res = await call('allowed', '/api/items');
    expect(res.status).toBe(200);
    expect(echoOf(res)).toMatchObject({ name: 'protected', url: '/api/items' });
    expect(echoOf(res).headers['x-caller']).toBe('allowed');
  });

  it('denies the denied service by its DENY rule, before its ALLOW rule is looked at', async () => {
    const seen = app.seen.length;
    const res = await call('denied', '/api/items');
    expect(res.status).toBe(403);
    expect(res.header('x-weft-error')).toBe('RBAC_DENIED');
    expect(res.body).toContain('default/protected/deny-denied');
    expect(app.seen.length).toBe(seen);
  });

  it('denies the unlisted service: no ALLOW rule matched', async () => {
    const res = await call('unlisted', '/api/items');
    expect(res.status).toBe(403);
    expect(res.header('x-weft-error')).toBe('RBAC_DENIED');
    expect(res.body).toContain('no ALLOW rule matched');
  });

  it('denies the allowed service what its rule does not allow: a method, a path outside /api/*', async () => {
    for (const [path, args] of [
      ['/api/items', ['-X', 'POST', '-d', 'x']],
      ['/api', []],
      ['/other', []],
    ] as const) {
      const res = await call('allowed', path, args);
      expect({ path, status: res.status, flag: res.header('x-weft-error') }).toEqual({
        path,
        status: 403,
        flag: 'RBAC_DENIED',
      });
    }
  });

  it('matches the normalized path: dot segments, encoded dots and double slashes cannot reach /admin', async () => {
    for (const path of [
      '/admin',
      '/api/../admin',
      '/api/%2e%2e/admin',
      '/api/%2E%2E/admin/users',
      '//admin',
      '/./admin',
    ]) {
      const res = await call('allowed', path);
      expect({ path, status: res.status, body: res.body }).toEqual({
        path,
        status: 403,
        body: 'denied by authorization policy: default/protected/deny-admin\n',
      });
    }
    // Inside the allowed prefix, a dot segment that stays inside is still allowed.
    expect((await call('allowed', '/api/v1/../items')).status).toBe(200);
  });

  it('counts denials in weft_requests_total{response_flags="RBAC_DENIED"} and logs them with the flag', async () => {
    const before = requestSeries((await curl([`http://127.0.0.1:${guard.adminPort}/metrics`])).body);
    const denied = (series: Series[]) =>
      series.filter((s) => s.labels.response_flags === 'RBAC_DENIED').reduce((sum, s) => sum + s.value, 0);
    const start = denied(before);
    for (const c of ['denied', 'unlisted', 'denied'] as const)
      expect((await call(c, '/api/x')).status).toBe(403);
    await expect
      .poll(
        async () => denied(requestSeries((await curl([`http://127.0.0.1:${guard.adminPort}/metrics`])).body)),
        {
          timeout: 5000,
        },
      )
      .toBe(start + 3);
    const series = requestSeries((await curl([`http://127.0.0.1:${guard.adminPort}/metrics`])).body);
    expect(series.find((s) => s.labels.response_flags === 'RBAC_DENIED')?.labels).toMatchObject({
      reporter: 'destination',
      response_code: '403',
      destination_service: 'protected',
    });
    const logged = guard.output
      .map((line) => {
        try {
          return JSON.parse(line) as { component?: string; flags?: string; status?: number; path?: string };
        } catch {
          return {};
        }
      })
      .filter((e) => e.component === 'access' && e.flags === 'RBAC_DENIED');
    expect(logged.length).toBeGreaterThanOrEqual(3);
    expect(logged[0]).toMatchObject({ status: 403 });
  });
});

describe('a listener rbac the proxy cannot compile', () => {
  it('is refused at start-up with the listener and field named', async () => {
    const bad: Bootstrap = {
      ...protectedBootstrap(1),
      listeners: [
        {
          name: 'inbound',
          address: '127.0.0.1',
          port: 0,
          direction: 'INBOUND',
          routeConfigName: 'inbound',
          rbac: { deny: [{ to: [{ paths: ['/a/*/b'] }] }] },
        },
      ],
    };
    await expect(startSidecar(bad)).rejects.toThrow(
      'Listener inbound: rbac.deny[0].to[0].paths[0]: may hold "*" only at its start or end (got "/a/*/b")',
    );
  });
});
