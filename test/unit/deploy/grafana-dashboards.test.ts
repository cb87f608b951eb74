/**
 * Schema checks of deploy/grafana (the rules of grafana/dashboard-linter, done in vitest): each
 * dashboards/*.json equals what dashboards.ts generates; schemaVersion is pinned; UIDs are
 * unique and equal the file names; panel ids are unique; every panel and target uses the
 * `${datasource}` variable; every target has an expression; every `rate(` window is
 * `$__rate_interval`; every panel sets a unit; links go by UID to existing dashboards; every
 * metric in the PromQL is documented in docs/metrics.md (which metrics-doc.test.ts ties to the
 * code's registries); the Node Graph panel has the node and edge queries and renames their values
 * to the field names Grafana's Node Graph reads (id, title, mainStat, secondaryStat, arc__*,
 * detail__*, source, target). The provisioning files point at the dashboards folder and a
 * Prometheus data source.
 */
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { dashboards, serviceGraphQueries, UIDS } from '../../../deploy/grafana/dashboards.ts';
import { dashboardText } from '../../../deploy/grafana/generate.ts';
import { DATASOURCE, type Dashboard, SCHEMA_VERSION } from '../../../deploy/grafana/model.ts';

const GRAFANA = fileURLToPath(new URL('../../../deploy/grafana/', import.meta.url));
const DOC = fileURLToPath(new URL('../../../docs/metrics.md', import.meta.url));

async function files(): Promise<Map<string, Dashboard>> {
  const out = new Map<string, Dashboard>();
  for (const name of (await readdir(`${GRAFANA}dashboards`)).filter((f) => f.endsWith('.json')).sort()) {
    out.set(name.replace(/\.json$/, ''), JSON.parse(await readFile(`${GRAFANA}dashboards/${name}`, 'utf8')));
  }
  return out;
}

/** Metric names (recording rules included) in a PromQL expression, without histogram suffixes. */
function metricNames(expr: string): string[] {
  const names =
    expr.match(/\b(?:weft_[a-z0-9_]+|process_[a-z0-9_]+|nodejs_[a-z0-9_]+|[a-z]+:weft_[a-z0-9_:]+)/g) ?? [];
  return [...new Set(names.map((n) => n.replace(/_(bucket|count|sum)$/, '')))];
}

/** Metric names of docs/metrics.md's tables (backquoted, first column). */
async function documented(): Promise<Set<string>> {
  const doc = await readFile(DOC, 'utf8');
  const out = new Set<string>();
  for (const line of doc.split('\n')) {
    const first = /^\| `([^`]+)`/.exec(line)?.[1];
    if (first !== undefined) out.add(first);
  }
  return out;
}

describe('deploy/grafana dashboards', () => {
  it('the committed JSON is what dashboards.ts generates (run npx node deploy/grafana/generate.ts)', async () => {
    const onDisk = await files();
    const generated = dashboards();
    expect([...onDisk.keys()].sort()).toEqual(Object.keys(generated).sort());
    for (const [name, d] of Object.entries(generated)) {
      expect(onDisk.get(name), name).toEqual(JSON.parse(dashboardText(d)));
    }
  });

  it('ships Mesh overview, Service, Workload, Control plane and Service graph, UIDs = file names', async () => {
    const onDisk = await files();
    expect(new Set([...onDisk.values()].map((d) => d.uid)).size).toBe(onDisk.size);
    for (const [name, d] of onDisk) expect(d.uid).toBe(name);
    expect([...onDisk.values()].map((d) => d.title).sort()).toEqual([
      'Weft / Control plane',
      'Weft / Mesh overview',
      'Weft / Service',
      'Weft / Service graph',
      'Weft / Workload',
    ]);
  });

  it('pins schemaVersion, has the datasource variable and namespace/service/workload variables', async () => {
    for (const [name, d] of await files()) {
      expect(d.schemaVersion, name).toBe(SCHEMA_VERSION);
      const vars = d.templating.list.map((v) => v.name);
      expect(vars[0], name).toBe('datasource');
      expect(d.templating.list[0]?.query).toBe('prometheus');
    }
    const vars = (uid: string) => dashboards()[uid]!.templating.list.map((v) => v.name);
    expect(vars('weft-service')).toEqual(['datasource', 'namespace', 'service']);
    expect(vars('weft-workload')).toEqual(['datasource', 'namespace', 'workload']);
    expect(vars('weft-mesh')).toContain('namespace');
    expect(vars('weft-service-graph')).toContain('namespace');
  });

  it('panel ids are unique; every panel has a unit, the datasource variable and targets with expressions', async () => {
    for (const [name, d] of await files()) {
      const ids = d.panels.map((p) => p.id);
      expect(new Set(ids).size, name).toBe(ids.length);
      for (const p of d.panels) {
        const where = `${name} / ${p.title}`;
        expect(p.datasource, where).toEqual(DATASOURCE);
        expect(typeof p.fieldConfig.defaults.unit, where).toBe('string');
        expect(p.fieldConfig.defaults.unit, where).not.toBe('');
        expect(p.targets.length, where).toBeGreaterThan(0);
        const refIds = p.targets.map((t) => t.refId);
        expect(new Set(refIds).size, where).toBe(refIds.length);
        for (const t of p.targets) {
          expect(t.datasource, where).toEqual(DATASOURCE);
          expect(t.expr.trim(), where).not.toBe('');
        }
      }
    }
  });

  it('every rate() window is $__rate_interval and every metric is in docs/metrics.md', async () => {
    const doc = await documented();
    for (const [name, d] of await files()) {
      for (const p of d.panels) {
        for (const t of p.targets) {
          const where = `${name} / ${p.title} / ${t.refId}`;
          const windows = [
            ...t.expr.matchAll(/\b(?:rate|irate|increase)\((?:[^()[\]]|\([^()]*\))*\[([^\]]+)\]/g),
          ].map((m) => m[1]);
          for (const w of windows) expect(w, where).toBe('$__rate_interval');
          const names = metricNames(t.expr);
          expect(names.length, where).toBeGreaterThan(0);
          for (const n of names) {
            const known = doc.has(n) || n.startsWith('process_') || n.startsWith('nodejs_');
            expect(known, `${where}: ${n} is not in docs/metrics.md`).toBe(true);
          }
        }
      }
    }
  });

  it('links go by UID to dashboards that exist', async () => {
    const uids = new Set(Object.values(UIDS));
    for (const [name, d] of await files()) {
      expect(d.links.length, name).toBe(uids.size - 1);
      for (const link of d.links) {
        const uid = /^\/d\/([a-z-]+)$/.exec(link.url)?.[1];
        expect(uid !== undefined && uids.has(uid as never), `${name}: ${link.url}`).toBe(true);
      }
    }
  });

  it('the Node Graph panel gives Grafana nodes (id, title, mainStat, arc__*) and edges (id, source, target, mainStat, secondaryStat)', () => {
    const graph = dashboards()['weft-service-graph']!;
    const panel = graph.panels.find((p) => p.type === 'nodeGraph');
    expect(panel).toBeDefined();
    const q = serviceGraphQueries();
    expect(panel!.targets.map((t) => t.refId)).toEqual(Object.keys(q));
    for (const t of panel!.targets) {
      expect(t.instant, t.refId).toBe(true);
      expect(t.format, t.refId).toBe('table');
    }
    // The labels the queries produce become frame fields of those names.
    expect(q.nodes).toMatch(/sum by \(id, title\)/);
    expect(q.edges).toMatch(/sum by \(id, source, target\)/);
    const organize = panel!.transformations!.find((t) => (t as { id: string }).id === 'organize') as {
      options: { renameByName: Record<string, string> };
    };
    const renamed = Object.values(organize.options.renameByName);
    for (const field of ['mainStat', 'secondaryStat', 'arc__success', 'arc__errors'])
      expect(renamed).toContain(field);
    expect(renamed.filter((f) => !['mainStat', 'secondaryStat'].includes(f))).toSatisfy((fs: string[]) =>
      fs.every((f) => f.startsWith('arc__') || f.startsWith('detail__')),
    );
    // Arcs are fractions (0..1) that sum to 1: success + errors.
    expect(q.nodes_errors).toContain('response_code=~"5.."');
    expect(q.nodes_success).toContain('response_code!~"5.."');
  });

  it('provisioning: a Prometheus data source and a file provider for the dashboards folder', async () => {
    const ds = parse(await readFile(`${GRAFANA}provisioning/datasources/prometheus.yaml`, 'utf8')) as {
      apiVersion: number;
      datasources: { type: string; uid: string; url: string }[];
    };
    expect(ds.apiVersion).toBe(1);
    expect(ds.datasources[0]).toMatchObject({ type: 'prometheus' });
    const dash = parse(await readFile(`${GRAFANA}provisioning/dashboards/weft.yaml`, 'utf8')) as {
      apiVersion: number;
      providers: { type: string; options: { path: string }; folder: string }[];
    };
    expect(dash.apiVersion).toBe(1);
    expect(dash.providers[0]).toMatchObject({ type: 'file', folder: 'Weft' });
    expect(dash.providers[0]?.options.path).toMatch(/dashboards/);
  });
});
