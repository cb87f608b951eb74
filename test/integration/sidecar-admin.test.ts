/**
 * The sidecar process around the router: bootstrap rejection (exit code and a message naming the
 * field path and the reason) and the admin listener (`/metrics` with the service-graph labels of
 * CONVENTIONS B2, `/ready`, `/healthz`, `/config_dump`). Real processes on loopback, curl as the
 * client.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { Bootstrap } from '../../sidecar/proxy/config/types.ts';
import { curl } from '../support/curl.ts';
import { clustersFor, echoOf, namedUpstream, within } from '../support/routing.ts';
import { outboundBootstrap, type RunningSidecar, startSidecar, WEFT_CLI } from '../support/sidecar.ts';
import type { Upstream } from '../support/upstream.ts';

/** A valid bootstrap to break in one place per case. */
function validBootstrap(): Bootstrap {
  return outboundBootstrap({
    virtualHosts: [
      { name: 'vh', domains: ['svc'], routes: [{ name: 'r0', route: { clusters: [{ name: 'backend' }] } }] },
    ],
    clusters: [{ name: 'backend' }],
    endpoints: [{ clusterName: 'backend', endpoints: [{ address: '127.0.0.1', port: 9 }] }],
  });
}

/** Runs `weft sidecar` on `doc` (any JSON value, written as YAML); resolves once it exits. */
async function runRejected(doc: unknown): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'weft-reject-'));
  const file = join(dir, 'bootstrap.yaml');
  await writeFile(file, stringify(doc));
  const child = spawn(process.execPath, [WEFT_CLI, 'sidecar', '--config', file, '--admin-port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  try {
    const code = await within(exited, 15_000, 'the sidecar to exit on an invalid bootstrap');
    return { code, stderr, stdout };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
}

type Json = Record<string, unknown>;

/** A deep copy of the valid bootstrap as plain JSON, with its one listener, cluster and route to edit. */
function editable(): { doc: unknown; listener: Json; cluster: Json; route: Json } {
  const doc = JSON.parse(JSON.stringify(validBootstrap())) as {
    listeners: Json[];
    clusters: Json[];
    routes: { virtualHosts: { routes: Json[] }[] }[];
  };
  return {
    doc,
    listener: doc.listeners[0]!,
    cluster: doc.clusters[0]!,
    route: doc.routes[0]!.virtualHosts[0]!.routes[0]!,
  };
}

describe('bootstrap rejection', () => {
  it('the valid baseline starts (so each rejection below is about its one change)', async () => {
    const sidecar = await startSidecar(validBootstrap());
    try {
      expect(sidecar.ports.outbound).toBeGreaterThan(0);
    } finally {
      await sidecar.stop();
    }
  });

  it('an unknown field exits 1 and names the field path', async () => {
    const { doc, listener } = editable();
    listener.bogusField = true;
    const { code, stderr, stdout } = await runRejected(doc);
    expect(code).toBe(1);
    expect(stderr).toContain('listeners[0].bogusField: unknown field');
    expect(stdout).not.toContain('sidecar ready');
  });

  it('a snake_case field name is rejected with a hint at the proto3 JSON name', async () => {
    const { doc, listener } = editable();
    listener.route_config_name = listener.routeConfigName;
    const { code, stderr } = await runRejected(doc);
    expect(code).toBe(1);
    expect(stderr).toContain('listeners[0].route_config_name: unknown field');
    expect(stderr).toContain('did you mean "routeConfigName"');
  });

  it('a bad enum value exits 1 and names the field and the allowed values', async () => {
    const { doc, cluster } = editable();
    cluster.lbPolicy = 'FASTEST';
    const { code, stderr } = await runRejected(doc);
    expect(code).toBe(1);
    expect(stderr).toContain('clusters[0].lbPolicy: expected one of');
    expect(stderr).toContain('ROUND_ROBIN');
    expect(stderr).toContain('"FASTEST"');
  });

  it('a bad path match type in a route exits 1 and names the nested field path', async () => {
    const { doc, route } = editable();
    route.matches = [{ path: { type: 'GLOB', value: '/x' } }];
    const { code, stderr } = await runRejected(doc);
    expect(code).toBe(1);
    expect(stderr).toContain('routes[0].virtualHosts[0].routes[0].matches[0].path.type: expected one of');
  });

  it('a route that refers to a missing cluster exits 1 and names the route and the cluster', async () => {
    const { doc, route } = editable();
    route.route = { clusters: [{ name: 'ghost' }] };
    const { code, stderr } = await runRejected(doc);
    expect(code).toBe(1);
    expect(stderr).toContain('routes[r0]: route.clusters: no Cluster named "ghost"');
  });

  it('backendRequestMs longer than requestMs exits 1 naming the route and the field', async () => {
    const { doc, route } = editable();
    route.timeouts = { requestMs: 100, backendRequestMs: 500 };
    const { code, stderr } = await runRejected(doc);
    expect(code).toBe(1);
    expect(stderr).toContain(
      'route "r0": timeouts.backendRequestMs: 500 must not exceed timeouts.requestMs 100',
    );
  });

  it('an invalid regular expression exits 1 naming the match field', async () => {
    const { doc, route } = editable();
    route.matches = [{ path: { type: 'REGULAR_EXPRESSION', value: '/items/(' } }];
    const { code, stderr } = await runRejected(doc);
    expect(code).toBe(1);
    expect(stderr).toContain('route "r0": matches[0].path.value: invalid regular expression');
  });
});

/** One `weft_requests_total` series: its labels and value. */
interface Series {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

function requestSeries(exposition: string): Series[] {
  const out: Series[] = [];
  for (const line of exposition.split('\n')) {
    const m = /^weft_requests_total\{(.*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const [, name, value] of m[1]!.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[name!] = value!;
    out.push({ labels, value: Number(m[2]) });
  }
  return out;
}

/** Sum of the series whose labels include every pair of `want`. */
function total(series: readonly Series[], want: Readonly<Record<string, string>>): number {
  return series
    .filter((s) => Object.entries(want).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

describe('admin listener', () => {
  const upstreams: Record<string, Upstream> = {};
  let sidecar: RunningSidecar;
  let base: string;
  let admin: string;

  beforeAll(async () => {
    upstreams.reviews = await namedUpstream('reviews');
    sidecar = await startSidecar(
      outboundBootstrap({
        virtualHosts: [
          {
            name: 'reviews',
            domains: ['reviews'],
            routes: [{ name: 'reviews', route: { clusters: [{ name: 'reviews' }] } }],
          },
        ],
        ...clustersFor(upstreams),
      }),
    );
    base = sidecar.url('outbound');
    admin = `http://127.0.0.1:${sidecar.adminPort}`;
  });

  afterAll(async () => {
    await sidecar?.stop();
    await Promise.all(Object.values(upstreams).map((u) => u.close()));
  });

  it('/healthz and /ready answer 200 once the sidecar is up', async () => {
    expect((await curl([`${admin}/healthz`])).status).toBe(200);
    expect((await curl([`${admin}/ready`])).status).toBe(200);
  });

  it('/metrics counts requests by reporter, response code and destination service, with response flags', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await curl(['-H', 'Host: reviews', `${base}/r/${i}`]);
      expect(echoOf(res).name).toBe('reviews');
    }
    const miss = await curl(['-H', 'Host: nowhere', `${base}/`]);
    expect(miss.status).toBe(404);

    const ok = {
      reporter: 'source',
      response_code: '200',
      destination_service: 'reviews',
      response_flags: '-',
    };
    const noRoute = { reporter: 'source', response_code: '404', response_flags: 'NO_ROUTE' };
    let series: Series[] = [];
    await expect
      .poll(
        async () => {
          const res = await curl([`${admin}/metrics`]);
          series = requestSeries(res.body);
          return [total(series, ok), total(series, noRoute)];
        },
        { timeout: 5000 },
      )
      .toEqual([3, 1]);
    const okSeries = series.find((s) => s.labels.response_code === '200')!;
    expect(okSeries.labels).toMatchObject({
      source_workload: 'test-v1',
      source_namespace: 'default',
      destination_service_name: 'reviews',
      request_protocol: 'http/1.1',
    });
    const metrics = await curl([`${admin}/metrics`]);
    expect(metrics.header('content-type')).toMatch(/^text\/plain/);
    expect(metrics.body).toMatch(/^weft_request_duration_seconds_bucket\{.*le="0\.005".*\} \d+$/m);
    // No path ever becomes a label (bounded cardinality).
    expect(metrics.body).not.toContain('/r/1');
  });

  it('/config_dump lists the listeners with their bound ports, as JSON', async () => {
    const res = await curl([`${admin}/config_dump`]);
    expect(res.status).toBe(200);
    expect(res.header('content-type')).toMatch(/^application\/json/);
    const dump = JSON.parse(res.body) as {
      version: string;
      listeners: { name: string; port: number; direction: string }[];
      clusters: { clusters: { name: string }[] };
    };
    expect(dump.version).toBe('static');
    expect(dump.listeners).toEqual([
      expect.objectContaining({ name: 'outbound', port: sidecar.ports.outbound, direction: 'OUTBOUND' }),
    ]);
    expect(dump.clusters.clusters.map((c) => c.name)).toEqual(['reviews']);
  });

  it('answers 404 for an unknown admin path and 405 for a non-GET method', async () => {
    expect((await curl([`${admin}/nope`])).status).toBe(404);
    expect((await curl(['-X', 'POST', `${admin}/metrics`])).status).toBe(405);
  });
});
