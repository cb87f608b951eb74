/**
 * docs/metrics.md is the one reference table: every metric the proxy (ProxyMetrics) and the
 * control plane (DiscoveryMetrics, monitoring.ts) register is in it with the type the code gives
 * it, and every recording rule of deploy/prometheus/rules is in it. Label names of the request
 * metrics are the service-graph set of labels.ts, with no unbounded label.
 */

import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DiscoveryMetrics } from '../../../control-plane/discovery/metrics.ts';
import { instrumentStore, registerControlPlaneMetrics } from '../../../control-plane/monitoring.ts';
import { watchStoreHealth } from '../../../control-plane/store/health.ts';
import { registerEdgeMetrics } from '../../../gateway/filters/limits/telemetry.ts';
import { registerOverloadMetrics } from '../../../sidecar/proxy/overload.ts';
import { REQUEST_LABELS } from '../../../sidecar/proxy/telemetry/labels.ts';
import { registerLogMetrics } from '../../../sidecar/proxy/telemetry/log-destination.ts';
import { ProxyMetrics } from '../../../sidecar/proxy/telemetry/metrics.ts';
import { MemoryStore } from '../../support/memory-store.ts';

const DOC = fileURLToPath(new URL('../../../docs/metrics.md', import.meta.url));
const RULES = fileURLToPath(
  new URL('../../../deploy/prometheus/rules/weft-service-graph.yml', import.meta.url),
);

/** name → type column of the doc's tables. */
async function docRows(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const line of (await readFile(DOC, 'utf8')).split('\n')) {
    const m = /^\|\s*`([^`]+)`\s*\|\s*([^|]+?)\s*\|/.exec(line);
    if (m) out.set(m[1]!, m[2]!.trim());
  }
  return out;
}

const proxy = new ProxyMetrics({ service: 'api', workload: 'api-v1', namespace: 'default' }, [
  registerEdgeMetrics,
]);
registerOverloadMetrics(proxy.registry);
registerLogMetrics(proxy.registry);
proxy.configVersion(() => '7');
afterAll(() => proxy.close());

let stopStoreHealth: (() => void) | undefined;
afterAll(() => stopStoreHealth?.());

function controlPlaneRegistry(): Registry {
  const registry = new Registry();
  new DiscoveryMetrics(registry);
  instrumentStore(new MemoryStore(), registry);
  // Names only (collect never runs here): the CA gauge is registered when a CA is given.
  registerControlPlaneMetrics(registry, {
    revision: () => 0,
    ca: {} as Parameters<typeof registerControlPlaneMetrics>[1]['ca'],
  });
  stopStoreHealth = watchStoreHealth(new MemoryStore(), { logger: pino({ level: 'silent' }), registry });
  return registry;
}

describe('docs/metrics.md', () => {
  it('lists every weft_ metric the proxy and the control plane register, with its type', async () => {
    const rows = await docRows();
    const registered = [
      ...proxy.registry.getMetricsAsArray(),
      ...controlPlaneRegistry().getMetricsAsArray(),
    ].filter((m) => m.name.startsWith('weft_'));
    expect(registered.length).toBeGreaterThan(15);
    for (const m of registered) {
      const type = (m as unknown as { type: string }).type ?? m.constructor.name.toLowerCase();
      expect(rows.has(m.name), `${m.name} is missing from docs/metrics.md`).toBe(true);
      expect(rows.get(m.name), m.name).toBe(String(type));
    }
    for (const name of [
      'weft_request_bytes',
      'weft_response_bytes',
      'weft_cp_config_revision',
      'weft_proxy_config_version',
    ]) {
      expect(registered.map((m) => m.name)).toContain(name);
    }
  });

  it('lists every recording rule', async () => {
    const rows = await docRows();
    const rules = parse(await readFile(RULES, 'utf8')) as { groups: { rules: { record: string }[] }[] };
    const names = rules.groups.flatMap((g) => g.rules.map((r) => r.record));
    expect(names.length).toBe(8);
    for (const n of names) expect(rows.has(n), n).toBe(true);
  });

  it('request metrics carry exactly the service-graph labels: no path, address or id', async () => {
    const text = await proxy.registry.metrics();
    expect(text).toMatch(/# TYPE weft_request_bytes histogram/);
    expect(text).toContain('weft_proxy_config_version{version="7"} 1');
    const bytes = proxy.registry.getSingleMetric('weft_response_bytes') as unknown as {
      labelNames: string[];
    };
    expect(bytes.labelNames).toEqual([...REQUEST_LABELS]);
    for (const label of REQUEST_LABELS)
      expect(label).not.toMatch(/(^|_)(path|url|ip|address|id|trace|user)($|_)/);
  });
});
