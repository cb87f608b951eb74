/**
 * Issue 8's key acceptance: every PromQL expression of every Grafana dashboard panel
 * (deploy/grafana) and every recording rule (deploy/prometheus/rules) runs against a real
 * Prometheus scraping a real mesh, parses, and returns data for the running services; the node
 * graph queries yield the expected edges; `weft graph` prints them from Prometheus and straight
 * from the proxies.
 *
 * The mesh: `weft control-plane --tls` (embedded store, temp dir) and dynamic sidecars beside small
 * HTTP apps, STRICT mTLS: loadgen → web → api → store (workloads `<service>-v1`). The test process
 * is loadgen's app: it sends requests to loadgen's outbound listener (`Host: web`) at a steady pace
 * while the test runs; web's app calls api through web's sidecar, api's app calls store through
 * api's. Every 10th request carries `x-fail`, which store answers 503, so error series exist too.
 *
 * Prometheus: Debian's `/usr/bin/prometheus` (scripts/ensure-test-deps.sh) on a free loopback port
 * with a generated config: scrape and rule evaluation every 1 s, the control plane's monitoring port
 * and every sidecar's admin port as static targets (labelled `component` as in
 * deploy/prometheus/prometheus.yml), and the repository's recording rules. Dashboard variables are
 * substituted with concrete values (`$namespace` default, `$service` api, `$workload` api-v1,
 * `$__rate_interval` 20s). Waits are deadline-bound polls; every process started here is stopped by
 * its pid in `afterAll`, the temp dir removed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { dashboards, serviceGraphQueries } from '../../deploy/grafana/dashboards.ts';
import {
  type ControlPlane,
  freePorts,
  joinToken,
  type MeshSidecar,
  pollUntil,
  startControlPlane,
  startMeshSidecar,
  stopAll,
  weft,
} from '../support/mesh.ts';

const RULES = fileURLToPath(new URL('../../deploy/prometheus/rules/weft-service-graph.yml', import.meta.url));
const VARIABLES: Record<string, string> = {
  namespace: 'default',
  service: 'api',
  workload: 'api-v1',
  __rate_interval: '20s',
};

const SERVICES_YAML = ['web', 'api', 'store']
  .map(
    (name) =>
      `apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: { name: ${name} }\nspec:\n  ports: [{ name: http, port: 80 }]\n`,
  )
  .join('---\n');

interface PromResult {
  readonly metric: Record<string, string>;
  readonly value: [number, string];
}

let root = '';
let cp: ControlPlane | undefined;
const sidecars: MeshSidecar[] = [];
const servers: Server[] = [];
let prometheus: ChildProcess | undefined;
let promUrl = '';
let loadgenOutbound = 0;
let trafficTimer: NodeJS.Timeout | undefined;
const traffic = { sent: 0, ok: 0, failed: 0, errors: 0 };
const agent = new Agent({ connections: 8 });

/** An app: answers 200 itself (`next` undefined) or forwards to `next` through its sidecar. */
async function startApp(name: string, next?: { outboundPort: number; host: string }): Promise<number> {
  const server = createServer((req, res) => {
    req.resume();
    const fail = req.headers['x-fail'] === '1';
    if (next === undefined) {
      res.writeHead(fail ? 503 : 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ service: name }));
      return;
    }
    request(`http://127.0.0.1:${next.outboundPort}/`, {
      headers: { host: next.host, ...(fail && { 'x-fail': '1' }) },
      dispatcher: agent,
    }).then(
      async (up) => {
        const body = await up.body.text();
        res.writeHead(up.statusCode, { 'content-type': 'application/json' });
        res.end(body);
      },
      () => {
        res.writeHead(502);
        res.end();
      },
    );
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function sidecar(
  service: string,
  appPort: number,
  outboundPort: number,
  inboundPort: number,
): Promise<MeshSidecar> {
  const plane = cp!;
  const s = await startMeshSidecar({
    controlPlane: plane.discoveryAddress,
    service,
    workload: `${service}-v1`,
    labels: { version: 'v1' },
    appPort,
    outboundPort,
    inboundPort,
    dataDir: join(root, 'sidecars'),
    caBundle: plane.caBundle!,
    token: await joinToken(plane, service),
  });
  sidecars.push(s);
  return s;
}

async function query(expr: string): Promise<PromResult[]> {
  const res = await request(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await res.body.json()) as { status: string; error?: string; data?: { result: PromResult[] } };
  if (body.status !== 'success') throw new Error(`${body.error ?? res.statusCode}\n${expr}`);
  return body.data!.result;
}

function substitute(expr: string): string {
  return expr.replace(/\$(\w+)/g, (whole, name: string) => VARIABLES[name] ?? whole);
}

/** Every panel target of every dashboard: where it is and its concrete expression. */
function dashboardExpressions(): { where: string; expr: string }[] {
  return Object.entries(dashboards()).flatMap(([file, d]) =>
    d.panels.flatMap((p) =>
      p.targets.map((t) => ({ where: `${file} / ${p.title} / ${t.refId}`, expr: substitute(t.expr) })),
    ),
  );
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'weft-obs-'));
  cp = await startControlPlane({ dataDir: join(root, 'control-plane'), tls: true });
  await writeFile(join(root, 'services.yaml'), SERVICES_YAML);
  const applied = await weft(['apply', '-f', join(root, 'services.yaml')], {
    env: { WEFT_SERVER: cp.server, WEFT_TOKEN: cp.token },
  });
  expect(applied.code, applied.stderr).toBe(0);

  const [webOut, webIn, apiOut, apiIn, storeOut, storeIn, lgOut, lgIn, promPort] = await freePorts(9);
  loadgenOutbound = lgOut!;
  const storeApp = await startApp('store');
  const apiApp = await startApp('api', { outboundPort: apiOut!, host: 'store' });
  const webApp = await startApp('web', { outboundPort: webOut!, host: 'api' });
  const lgApp = await startApp('loadgen');
  await Promise.all([
    sidecar('store', storeApp, storeOut!, storeIn!),
    sidecar('api', apiApp, apiOut!, apiIn!),
    sidecar('web', webApp, webOut!, webIn!),
    sidecar('loadgen', lgApp, lgOut!, lgIn!),
  ]);

  // Steady traffic: a request every 25 ms (40/s), every 10th failing at store.
  trafficTimer = setInterval(() => {
    const n = traffic.sent++;
    request(`http://127.0.0.1:${loadgenOutbound}/`, {
      headers: { host: 'web', ...(n % 10 === 9 && { 'x-fail': '1' }) },
      dispatcher: agent,
    }).then(
      async (res) => {
        await res.body.dump();
        if (res.statusCode === 200) traffic.ok++;
        else traffic.failed++;
      },
      () => {
        traffic.errors++;
      },
    );
  }, 25);

  // Prometheus with the repository's rules, scraping every process of the mesh each second.
  const config = {
    global: { scrape_interval: '1s', evaluation_interval: '1s' },
    rule_files: [RULES],
    scrape_configs: [
      {
        job_name: 'weft-control-plane',
        static_configs: [
          { targets: [`127.0.0.1:${cp.monitoringPort}`], labels: { component: 'control-plane' } },
        ],
      },
      {
        job_name: 'weft-sidecars',
        static_configs: [
          { targets: sidecars.map((s) => `127.0.0.1:${s.adminPort}`), labels: { component: 'sidecar' } },
        ],
      },
    ],
  };
  await writeFile(join(root, 'prometheus.yml'), stringify(config));
  promUrl = `http://127.0.0.1:${promPort}`;
  prometheus = spawn(
    '/usr/bin/prometheus',
    [
      `--config.file=${join(root, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(root, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let promLog = '';
  prometheus.stderr?.on('data', (c: Buffer) => {
    promLog += c.toString();
  });
  await pollUntil(
    'Prometheus /-/ready',
    async () => {
      if (prometheus?.exitCode !== null) throw new Error(`prometheus exited: ${promLog}`);
      const res = await request(`${promUrl}/-/ready`);
      await res.body.dump();
      return res.statusCode === 200 ? true : undefined;
    },
    { timeoutMs: 15_000, intervalMs: 100 },
  );
  // Data: every target up, both edges seen by a recording rule and the p99 rule, 5xx counted.
  await pollUntil(
    'Prometheus to have scraped the mesh and evaluated the rules',
    async () => {
      const up = await query('up == 1');
      const edges = await query('edge:weft_requests:rate1m > 0');
      const p99 = await query('edge:weft_request_duration_seconds:p99_rate1m');
      const errors = await query('edge:weft_request_errors:rate1m > 0');
      const pairs = new Set(
        edges.map((r) => `${r.metric.source_workload}->${r.metric.destination_workload}`),
      );
      return up.length === 5 &&
        pairs.has('web-v1->api-v1') &&
        pairs.has('api-v1->store-v1') &&
        p99.length >= 3 &&
        errors.length > 0
        ? true
        : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 250 },
  );
}, 60_000);

afterAll(async () => {
  if (trafficTimer) clearInterval(trafficTimer);
  if (prometheus?.pid !== undefined && prometheus.exitCode === null) {
    const exited = new Promise((resolve) => prometheus?.once('exit', resolve));
    process.kill(prometheus.pid, 'SIGTERM');
    await exited;
  }
  await stopAll(sidecars);
  await cp?.stop();
  await Promise.all(
    servers.map(
      (s) =>
        new Promise<void>((resolve) => {
          s.closeAllConnections();
          s.close(() => resolve());
        }),
    ),
  );
  await agent.close();
  if (root) await rm(root, { recursive: true, force: true });
});

describe('dashboards and recording rules against a real Prometheus scraping a live mesh', () => {
  it('the mesh is serving the traffic (200s through web → api → store, 503s from store)', () => {
    expect(traffic.ok).toBeGreaterThan(50);
    expect(traffic.failed).toBeGreaterThan(0);
    expect(traffic.errors).toBe(0);
  });

  it('every dashboard panel expression parses and returns data', async () => {
    const exprs = dashboardExpressions();
    expect(exprs.length).toBeGreaterThan(50);
    const empty: string[] = [];
    for (const { where, expr } of exprs) {
      const result = await query(expr).catch((err: Error) => {
        throw new Error(`${where}: ${err.message}`);
      });
      if (result.length === 0) empty.push(`${where}\n${expr}`);
    }
    expect(empty, `expressions without data:\n${empty.join('\n\n')}`).toEqual([]);
  });

  it('every recording rule expression parses and returns data, and each recorded series exists', async () => {
    const rules = parse(await readFile(RULES, 'utf8')) as {
      groups: { rules: { record: string; expr: string }[] }[];
    };
    const all = rules.groups.flatMap((g) => g.rules);
    expect(all.length).toBe(8);
    for (const rule of all) {
      expect((await query(rule.expr)).length, rule.record).toBeGreaterThan(0);
      expect((await query(rule.record)).length, rule.record).toBeGreaterThan(0);
    }
    const ratio = await query('edge:weft_request_error_ratio:rate1m{source_workload="api-v1"}');
    expect(Number(ratio[0]?.value[1])).toBeGreaterThan(0);
    expect(Number(ratio[0]?.value[1])).toBeLessThan(0.5);
  });

  it('the node graph queries give the workloads as nodes and web→api, api→store as edges', async () => {
    const q = serviceGraphQueries();
    const edges = await query(substitute(q.edges!));
    const pairs = edges.map((r) => `${r.metric.source}->${r.metric.target}`);
    expect(pairs).toEqual(
      expect.arrayContaining(['loadgen-v1->web-v1', 'web-v1->api-v1', 'api-v1->store-v1']),
    );
    for (const r of edges) expect(r.metric.id).toBe(`${r.metric.source}->${r.metric.target}`);
    const nodes = (await query(substitute(q.nodes!))).map((r) => r.metric.id);
    expect(nodes).toEqual(expect.arrayContaining(['loadgen-v1', 'web-v1', 'api-v1', 'store-v1']));
    const titles = (await query(substitute(q.nodes!))).map((r) => r.metric.title);
    expect(titles).toEqual(expect.arrayContaining(['web-v1']));
    // Arcs sum to 1 per serving node; edge error % is in 0..100; p99 is a latency in seconds.
    const success = new Map(
      (await query(substitute(q.nodes_success!))).map((r) => [r.metric.id, Number(r.value[1])]),
    );
    const errors = new Map(
      (await query(substitute(q.nodes_errors!))).map((r) => [r.metric.id, Number(r.value[1])]),
    );
    for (const id of ['web-v1', 'api-v1', 'store-v1']) {
      expect((success.get(id) ?? 0) + (errors.get(id) ?? 0), id).toBeCloseTo(1, 6);
    }
    expect(errors.get('store-v1')).toBeGreaterThan(0);
    for (const r of await query(substitute(q.edges_errors!))) {
      expect(Number(r.value[1])).toBeGreaterThanOrEqual(0);
      expect(Number(r.value[1])).toBeLessThanOrEqual(100);
    }
    const p99 = await query(substitute(q.edges_p99!));
    expect(p99.map((r) => r.metric.id)).toEqual(
      expect.arrayContaining(['web-v1->api-v1', 'api-v1->store-v1']),
    );
    // The two steady edges have a latency; an edge with no request in the window has none (NaN).
    for (const r of p99.filter((x) => ['web-v1->api-v1', 'api-v1->store-v1'].includes(x.metric.id ?? ''))) {
      expect(Number(r.value[1]), r.metric.id).toBeGreaterThan(0);
    }
  });

  it('weft graph --prometheus prints the edges with rate, success % and p99', async () => {
    const res = await weft(['graph', '--prometheus', promUrl, '--window', '20s']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/SOURCE\s+DESTINATION\s+RPS\s+SUCCESS\s+P99/);
    expect(res.stdout).toMatch(/web-v1\.default\s+→\s+api-v1\.default\s+\d+\.\d\d\s+\d+\.\d%\s+\d+\.\dms/);
    expect(res.stdout).toMatch(/api-v1\.default\s+→\s+store-v1\.default\s+\d+\.\d\d\s+\d+\.\d%\s+\d+\.\dms/);
    const json = await weft(['graph', '--prometheus', promUrl, '--window', '20s', '-o', 'json']);
    const edges = JSON.parse(json.stdout) as {
      source: string;
      target: string;
      rate: number;
      success: number;
    }[];
    const api = edges.find((e) => e.source === 'api-v1' && e.target === 'store-v1');
    expect(api?.rate).toBeGreaterThan(1); // requests/s on a steady edge (the load is 40 req/s at the entry)
    expect(api?.success).toBeGreaterThan(0.5);
    expect(api?.success).toBeLessThan(1);
  });

  it('weft graph --proxies scrapes the admin ports directly and shows the same edges', async () => {
    const targets = sidecars.map((s) => `127.0.0.1:${s.adminPort}`).join(',');
    const res = await weft(['graph', '--proxies', targets, '--sample', '1s', '-o', 'json']);
    expect(res.code, res.stderr).toBe(0);
    const edges = JSON.parse(res.stdout) as {
      source: string;
      target: string;
      rate: number;
      p99Seconds: number;
    }[];
    const pairs = edges.map((e) => `${e.source}->${e.target}`);
    expect(pairs).toEqual(expect.arrayContaining(['web-v1->api-v1', 'api-v1->store-v1']));
    const web = edges.find((e) => e.source === 'web-v1')!;
    expect(web.rate).toBeGreaterThan(10);
    expect(web.p99Seconds).toBeGreaterThan(0);
    const table = await weft(['graph', '--proxies', targets, '--sample', '500ms']);
    expect(table.stdout).toMatch(/web-v1\.default\s+→\s+api-v1\.default/);
    const bad = await weft(['graph', '--proxies', '127.0.0.1:1']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/proxy 127\.0\.0\.1:1: .*ECONNREFUSED/);
  });
});
