/**
 * Outlier detection end to end, with real processes: three upstream endpoints, each a node:http
 * server in a child process of its own (so one can be SIGKILLed), behind a `weft sidecar --config`
 * whose cluster ejects an endpoint after 2 consecutive gateway errors (and allows 64 concurrent
 * retries, within the default retry budget) and whose route retries connect failures, resets and
 * 502/503/504 twice. A steady open-loop load of 500 GET/s for 10 s (an undici
 * Pool on a fixed-interval schedule, each request sent at its due time whatever the others do) runs
 * while one endpoint is killed after 3 s: at most 0.1 % of the requests may fail, the dead endpoint
 * must be ejected (in `/config_dump` and `weft_outlier_ejections_total`) and get nothing afterwards.
 * The figures are printed as one JSON line (`outlier figures`).
 *
 * Beside it, the error-rate breaker through the same sidecar: an endpoint answering 503 trips its
 * breaker (503 CIRCUIT_OPEN, gauge 2), and once it recovers the half-open probe closes it again.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Route } from '../../sidecar/proxy/config/types.ts';
import { outboundBootstrap, type RunningSidecar, startSidecar } from '../support/sidecar.ts';
import { startUpstream, type Upstream } from '../support/upstream.ts';

const RATE_PER_S = 500;
const DURATION_MS = 10_000;
const KILL_AT_MS = 3000;
const BASE_EJECTION_MS = 30_000;

/** A node:http server answering its own name; prints `{"port":N}` once listening. */
const ENDPOINT_SCRIPT = `
const http = require('node:http');
const name = process.argv[1];
const server = http.createServer((req, res) => {
  req.resume();
  res.setHeader('x-endpoint', name);
  res.end(name);
});
server.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: server.address().port }) + '\\n'));
`;

interface Endpoint {
  readonly name: string;
  readonly port: number;
  readonly child: ChildProcess;
}

async function startEndpoint(name: string): Promise<Endpoint> {
  const child = spawn(process.execPath, ['-e', ENDPOINT_SCRIPT, name], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => reject(new Error(`endpoint ${name} did not start`)), 10_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const nl = buffered.indexOf('\n');
      if (nl === -1) return;
      clearTimeout(timer);
      resolve((JSON.parse(buffered.slice(0, nl)) as { port: number }).port);
    });
    child.once('exit', (code) => reject(new Error(`endpoint ${name} exited with ${code}`)));
  });
  return { name, port, child };
}

function stopEndpoint(e: Endpoint): Promise<void> {
  if (e.child.exitCode !== null || e.child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((resolve) => e.child.once('exit', () => resolve()));
  e.child.kill('SIGKILL');
  return exited;
}

interface Outcome {
  readonly sentAtMs: number;
  readonly status: number; // 0: the client saw an error
  readonly endpoint: string;
  readonly error: string;
  readonly latencyMs: number;
}

/** Sends `count` GETs at `RATE_PER_S`, each at its due time (open loop); resolves with every outcome. */
async function steadyLoad(
  pool: Pool,
  count: number,
  onTick: (elapsedMs: number) => void,
): Promise<Outcome[]> {
  const intervalMs = 1000 / RATE_PER_S;
  const outcomes: Promise<Outcome>[] = [];
  const start = performance.now();
  const send = (sentAtMs: number): Promise<Outcome> =>
    pool
      .request({ method: 'GET', path: '/', headers: { host: 'svc' } })
      .then(async (res) => {
        await res.body.text();
        return {
          sentAtMs,
          status: res.statusCode,
          endpoint: String(res.headers['x-endpoint'] ?? ''),
          error: String(res.headers['x-weft-error'] ?? ''),
          latencyMs: performance.now() - start - sentAtMs,
        };
      })
      .catch((err: Error) => ({
        sentAtMs,
        status: 0,
        endpoint: '',
        error: err.message,
        latencyMs: performance.now() - start - sentAtMs,
      }));
  await new Promise<void>((resolve) => {
    let next = 0;
    const timer = setInterval(() => {
      const elapsed = performance.now() - start;
      onTick(elapsed);
      while (next < count && next * intervalMs <= elapsed) {
        outcomes.push(send(next * intervalMs));
        next++;
      }
      if (next >= count) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
  return Promise.all(outcomes);
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

interface DumpEndpoint {
  key: string;
  ejectedUntil?: string | null;
  ejections?: number;
}

describe('outlier detection under load, with an endpoint SIGKILLed', () => {
  let endpoints: Endpoint[] = [];
  let flaky: Upstream | undefined;
  /** The status `flaky` answers with. */
  let flakyStatus = 503;
  let sidecar: RunningSidecar | undefined;
  let pool: Pool | undefined;

  beforeAll(async () => {
    endpoints = await Promise.all(['a', 'b', 'c'].map(startEndpoint));
    flaky = await startUpstream((req, res) => {
      req.resume();
      res.statusCode = flakyStatus;
      res.end('flaky');
    });
    const route: Route = {
      name: 'svc',
      matches: [{ path: { type: 'PATH_PREFIX', value: '/' } }],
      route: { clusters: [{ name: 'svc' }] },
      retry: {
        numRetries: 2,
        retryOnConnectFailure: true,
        retryOnReset: true,
        retryOnStatus: [502, 503, 504],
      },
    };
    sidecar = await startSidecar(
      outboundBootstrap({
        virtualHosts: [
          { name: 'svc', domains: ['svc'], routes: [route] },
          {
            name: 'flaky',
            domains: ['flaky'],
            routes: [
              {
                name: 'flaky',
                matches: [{ path: { type: 'PATH_PREFIX', value: '/' } }],
                route: { clusters: [{ name: 'flaky' }] },
              },
            ],
          },
        ],
        clusters: [
          {
            name: 'svc',
            // Envoy's default of 3 concurrent retries is too few for the burst of requests caught on
            // the endpoint in the few ms before it is ejected (each holds its slot through the
            // back-off): the retry budget (default 20 % + 10/s) is what bounds retries here.
            outlierDetection: {
              consecutiveGatewayErrors: 2,
              baseEjectionTimeMs: BASE_EJECTION_MS,
              intervalMs: 10_000,
            },
          },
          {
            name: 'flaky',
            circuitBreakers: {
              errorThresholdPercent: 50,
              volumeThreshold: 5,
              resetTimeoutMs: 1000,
              windowMs: 10_000,
            },
          },
        ],
        endpoints: [
          { clusterName: 'svc', endpoints: endpoints.map((e) => ({ address: '127.0.0.1', port: e.port })) },
          { clusterName: 'flaky', endpoints: [{ address: '127.0.0.1', port: flaky.port }] },
        ],
      }),
    );
    pool = new Pool(sidecar.url('outbound'), { connections: 128, pipelining: 1 });
  });

  afterAll(async () => {
    await pool?.close();
    await sidecar?.stop();
    await Promise.all(endpoints.map(stopEndpoint));
    await flaky?.close();
  });

  it('trips the error-rate breaker (503 CIRCUIT_OPEN) and closes it with the half-open probe', async () => {
    const admin = `http://127.0.0.1:${(sidecar as RunningSidecar).adminPort}`;
    const gauge = async (): Promise<string | undefined> =>
      /^weft_circuit_breaker_state\{cluster="flaky",endpoint="[^"]+"\} (\d)$/m.exec(
        await (await fetch(`${admin}/metrics`)).text(),
      )?.[1];
    const get = async () => {
      const res = await (pool as Pool).request({ method: 'GET', path: '/', headers: { host: 'flaky' } });
      await res.body.text();
      return { status: res.statusCode, error: res.headers['x-weft-error'] };
    };
    expect(await gauge()).toBe('0');
    for (let i = 0; i < 5; i++) expect(await get()).toEqual({ status: 503, error: undefined }); // the upstream's own
    await expect.poll(gauge, { timeout: 5000 }).toBe('2'); // opossum settles on the next ticks
    expect(await get()).toEqual({ status: 503, error: 'CIRCUIT_OPEN' });
    flakyStatus = 200;
    expect(await get()).toEqual({ status: 503, error: 'CIRCUIT_OPEN' }); // still open: no request sent
    await expect.poll(gauge, { timeout: 5000 }).toBe('1'); // half-open after resetTimeoutMs
    expect(await get()).toEqual({ status: 200, error: undefined }); // the probe
    await expect.poll(gauge, { timeout: 5000 }).toBe('0');
    expect(await get()).toEqual({ status: 200, error: undefined });
  });

  it('keeps failures at or below 0.1 % and ejects the dead endpoint', async () => {
    const victim = endpoints[1] as Endpoint;
    const victimKey = `127.0.0.1:${victim.port}`;
    let killedAtMs = 0;
    let killedAtEpochMs = 0;
    const count = (RATE_PER_S * DURATION_MS) / 1000;
    const outcomes = await steadyLoad(pool as Pool, count, (elapsed) => {
      if (killedAtMs === 0 && elapsed >= KILL_AT_MS) {
        killedAtMs = elapsed;
        killedAtEpochMs = Date.now();
        victim.child.kill('SIGKILL');
      }
    });

    const failed = outcomes.filter((o) => o.status !== 200);
    const byEndpoint: Record<string, number> = {};
    for (const o of outcomes) byEndpoint[o.endpoint || '-'] = (byEndpoint[o.endpoint || '-'] ?? 0) + 1;
    const afterKill = outcomes.filter((o) => o.sentAtMs > killedAtMs + 1000);
    const latencies = outcomes.map((o) => o.latencyMs).sort((x, y) => x - y);
    const p99Of = (list: readonly Outcome[]): number =>
      +percentile(
        list.map((o) => o.latencyMs).sort((x, y) => x - y),
        99,
      ).toFixed(2);
    const aroundKill = outcomes.filter((o) => Math.abs(o.sentAtMs - killedAtMs) <= 500);

    const base = `http://127.0.0.1:${(sidecar as RunningSidecar).adminPort}`;
    const dump = (await (await fetch(`${base}/config_dump`)).json()) as {
      clusters: { clusters: { name: string; endpoints: DumpEndpoint[] }[] };
    };
    const svc = dump.clusters.clusters.find((c) => c.name === 'svc');
    const dead = svc?.endpoints.find((e) => e.key === victimKey);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    const ejections = Number(
      /^weft_outlier_ejections_total\{cluster="svc",reason="consecutive_gateway_errors"\} (\d+)$/m.exec(
        metrics,
      )?.[1] ?? 0,
    );
    const retries = [
      ...metrics.matchAll(/^weft_retries(_skipped)?_total\{cluster="svc",reason="([^"]+)"\} (\d+)$/gm),
    ].map((m) => `${m[1] === undefined ? 'retried' : 'skipped'} ${m[2]}=${m[3]}`);
    const ejectedAfterKillMs =
      typeof dead?.ejectedUntil === 'string'
        ? Date.parse(dead.ejectedUntil) - BASE_EJECTION_MS - killedAtEpochMs
        : null;

    console.log(
      'outlier figures',
      JSON.stringify({
        requests: outcomes.length,
        failed: failed.length,
        failedPercent: (100 * failed.length) / outcomes.length,
        failures: failed.slice(0, 10).map((o) => `${o.status} ${o.error}`),
        byEndpoint,
        killedAtMs: Math.round(killedAtMs),
        ejectedAfterKillMs,
        ejectionsMetric: ejections,
        retries,
        latencyMs: {
          p50: +percentile(latencies, 50).toFixed(2),
          p99: +percentile(latencies, 99).toFixed(2),
          max: +percentile(latencies, 100).toFixed(2),
          p99BeforeKill: p99Of(outcomes.filter((o) => o.sentAtMs < killedAtMs - 500)),
          p99AroundKill: p99Of(aroundKill),
          p99AfterKill: p99Of(afterKill),
        },
        deadEndpoint: dead,
      }),
    );

    expect(outcomes).toHaveLength(count);
    expect(failed.length).toBeLessThanOrEqual(count / 1000); // ≤ 0.1 %
    expect(dead?.ejectedUntil).toEqual(expect.any(String));
    expect(dead?.ejections).toBe(1);
    expect(Date.parse(dead?.ejectedUntil ?? '')).toBeGreaterThan(Date.now());
    expect(svc?.endpoints.filter((e) => e.key !== victimKey).map((e) => e.ejectedUntil)).toEqual([
      null,
      null,
    ]);
    expect(ejections).toBe(1);
    // Once ejected, the dead endpoint gets nothing; the two live ones share the load.
    expect(afterKill.filter((o) => o.endpoint === victim.name)).toEqual([]);
    expect(byEndpoint.a).toBeGreaterThan(count / 3);
    expect(byEndpoint.c).toBeGreaterThan(count / 3);
  }, 60_000);
});
