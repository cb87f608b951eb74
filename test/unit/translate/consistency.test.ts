/**
 * Consistency (go-control-plane's Snapshot.Consistent): every routeConfigName and cluster a
 * snapshot names exists, and the proxy accepts the snapshot as a whole. Generated meshes with
 * missing Services, missing ports, foreign kinds, tcp-only Services and duplicate registrations
 * must still translate to configs the proxy ACKs; an inconsistent result is a translator bug and
 * throws instead of being pushed.
 */
import { describe, expect, it, vi } from 'vitest';
import type { Resource } from '../../../control-plane/resources/types.ts';
import { TranslatorBug, translate } from '../../../control-plane/translate/translate.ts';
import type { EndpointRegistration } from '../../../control-plane/translate/types.ts';
import { checkConsistency } from '../../../sidecar/proxy/config/validate.ts';
import { proxyProblems, registration, resource, rng, service, sidecar } from './helpers.ts';

vi.mock('../../../sidecar/proxy/config/validate.ts', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../../sidecar/proxy/config/validate.ts')>();
  return { ...original, checkConsistency: vi.fn(original.checkConsistency) };
});

/** A seeded mesh of `n` Services with routes pointing at existing and missing backends. */
function generatedMesh(
  seed: number,
  n: number,
): { resources: Resource[]; endpoints: EndpointRegistration[] } {
  const random = rng(seed);
  const next = (m: number): number => Math.floor(random() * m);
  const namespaces = ['default', 'shop', 'pay'];
  const resources: Resource[] = [];
  const endpoints: EndpointRegistration[] = [];
  for (let i = 0; i < n; i++) {
    const ns = namespaces[next(3)]!;
    const ports = next(4) === 0 ? [5432] : next(2) === 0 ? [8080, 9090] : [8080];
    const svc = service(`svc-${i}`, ns, ports);
    if (ports[0] === 5432) {
      resources.push({ ...svc, spec: { ports: [{ port: 5432, appProtocol: 'tcp' }] } });
    } else {
      resources.push(svc);
    }
    for (let k = 0; k < 1 + next(3); k++) {
      endpoints.push(
        registration(`svc-${i}`, `127.0.${i}.${1 + next(3)}`, { namespace: ns, proxyId: `p-${i}-${k}` }),
      );
    }
  }
  for (let r = 0; r < n; r++) {
    const ns = namespaces[next(3)]!;
    const parent = `svc-${next(n + 2)}`;
    const backends = Array.from({ length: 1 + next(3) }, () => ({
      name: `svc-${next(n + 2)}`,
      namespace: namespaces[next(3)]!,
      ...(next(2) === 0 && { port: next(2) === 0 ? 8080 : 9999 }),
      weight: next(5),
    }));
    resources.push(
      resource(
        'HTTPRoute',
        `route-${r}`,
        {
          parentRefs: [{ group: '', kind: 'Service', name: parent, namespace: namespaces[next(3)]! }],
          rules: [
            { matches: [{ path: { type: 'PathPrefix', value: `/p${next(4)}` } }], backendRefs: backends },
          ],
        },
        { namespace: ns, creationTimestamp: `2026-11-30T10:0${next(10)}:00Z` },
      ),
    );
  }
  return { resources, endpoints };
}

describe('translated snapshots are consistent', () => {
  for (const seed of [1, 2, 3, 5, 8, 13, 21, 34]) {
    it(`generated mesh #${seed}: every client's snapshot is one the proxy accepts`, () => {
      const { resources, endpoints } = generatedMesh(seed, 12);
      for (const ns of ['default', 'shop', 'pay', 'elsewhere']) {
        const snap = translate({ revision: seed, resources, endpoints }, sidecar('client', ns));
        expect(proxyProblems(snap.config)).toEqual([]);
      }
    });
  }

  it('the generated meshes do exercise attached routes, invalid backends and tcp-only Services', () => {
    let rules = 0;
    let invalid = 0;
    let tcpOnly = 0;
    for (const seed of [1, 2, 3, 5, 8, 13, 21, 34]) {
      const { resources, endpoints } = generatedMesh(seed, 12);
      tcpOnly += resources.filter(
        (r) => r.kind === 'Service' && JSON.stringify(r.spec).includes('"tcp"'),
      ).length;
      const { config } = translate({ revision: seed, resources, endpoints }, sidecar('client'));
      const routes = (config.routes.find((r) => r.name === 'outbound')?.virtualHosts ?? []).flatMap(
        (v) => v.routes ?? [],
      );
      rules += routes.filter((r) => r.name !== 'default').length;
      invalid += routes
        .flatMap((r) => r.route?.clusters ?? [])
        .filter((c) => c.invalidReason !== undefined).length;
    }
    expect(rules).toBeGreaterThan(5);
    expect(invalid).toBeGreaterThan(5);
    expect(tcpOnly).toBeGreaterThan(5);
  });

  it('every cluster named by a route exists, and every cluster has exactly one load assignment', () => {
    const { resources, endpoints } = generatedMesh(99, 20);
    const { config } = translate({ revision: 1, resources, endpoints }, sidecar('client'));
    const clusters = config.clusters.map((c) => c.name);
    expect(config.endpoints.map((e) => e.clusterName)).toEqual(clusters);
    for (const rc of config.routes) {
      for (const vh of rc.virtualHosts ?? []) {
        for (const r of vh.routes ?? []) {
          for (const c of r.route?.clusters ?? []) {
            if (c.invalidReason === undefined) expect(clusters).toContain(c.name);
          }
        }
      }
    }
  });

  it('an inconsistent result throws TranslatorBug naming the proxy, version and problems instead of returning', () => {
    vi.mocked(checkConsistency).mockReturnValueOnce([
      'Listener outbound: routeConfigName: no RouteConfiguration',
    ]);
    const call = () => translate({ revision: 3, resources: [service('a')], endpoints: [] }, sidecar('web'));
    expect(call).toThrow(TranslatorBug);
    vi.mocked(checkConsistency).mockReturnValueOnce(['boom']);
    expect(call).toThrow(/web-0\.default at version 3: boom/);
  });

  it('the snapshot is checked with the proxy consistency check on every call', () => {
    vi.mocked(checkConsistency).mockClear();
    translate({ revision: 1, resources: [service('a')], endpoints: [] }, sidecar('web'));
    expect(checkConsistency).toHaveBeenCalledTimes(1);
  });
});
