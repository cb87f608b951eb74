/**
 * Data-plane faults on one static sidecar (`weft sidecar --config`) in front of an upstream in
 * its own process (support/processes.ts), each under load and returning its figures:
 *
 * - `upstreamKilledMidRequest`: streaming responses; the upstream is SIGKILLed with responses in
 *   flight, then restarted on its port. Figures: failures by kind, retries, fds before/after.
 * - `upstreamHangs`: the upstream never answers; the route's 1 s timeout answers 504.
 * - `upstreamClosesKeepAlive`: the upstream closes idle keep-alive connections every second.
 * - `overload`: wrk offers far more concurrency than the listener admits (`maxActiveRequests`)
 *   to a slow upstream: the excess is shed with 503 OVERLOADED, admin /ready keeps answering,
 *   event-loop delay and RSS stay bounded, and requests succeed again once the load stops.
 * - `logDestinationFails`: the access log (every request) goes to a pipe nobody reads, or to
 *   /dev/full: requests are unaffected, dropped lines are counted.
 *
 * Descriptor counts come from /proc/<pid>/fd; "no leak" means the count returns to within 2 of
 * its value before the fault once the load's connections are closed (polled, with a deadline).
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import type { Bootstrap, RetryPolicy, RouteTimeouts } from '../../../sidecar/proxy/config/types.ts';
import { freePorts, pollUntil } from '../../support/mesh.ts';
import { fdCount, rssMiB } from '../support/figures.ts';
import { FixedRateLoad, type LoadFigures } from '../support/load.ts';
import {
  metricSum,
  type StaticSidecar,
  startStaticSidecar,
  startUpstreamProcess,
  type UpstreamMode,
  type UpstreamProcess,
} from '../support/processes.ts';

/** A bootstrap: listener `outbound` on `port`, host `up` → cluster `up` → 127.0.0.1:`upstreamPort`. */
export function upstreamBootstrap(options: {
  adminPort: number;
  port: number;
  upstreamPort: number;
  retry?: RetryPolicy;
  timeouts?: RouteTimeouts;
  limits?: NonNullable<Bootstrap['listeners']>[number]['limits'];
}): Bootstrap {
  return {
    node: { id: 'faults-1', service: 'faults', namespace: 'default', workload: 'faults-v1' },
    admin: { address: '127.0.0.1', port: options.adminPort },
    listeners: [
      {
        name: 'outbound',
        address: '127.0.0.1',
        port: options.port,
        direction: 'OUTBOUND',
        routeConfigName: 'r',
        ...(options.limits !== undefined && { limits: options.limits }),
      },
    ],
    routes: [
      {
        name: 'r',
        virtualHosts: [
          {
            name: 'up',
            domains: ['up'],
            routes: [
              {
                name: 'up',
                route: { clusters: [{ name: 'up' }] },
                ...(options.retry !== undefined && { retry: options.retry }),
                ...(options.timeouts !== undefined && { timeouts: options.timeouts }),
              },
            ],
          },
        ],
      },
    ],
    clusters: [{ name: 'up' }],
    endpoints: [{ clusterName: 'up', endpoints: [{ address: '127.0.0.1', port: options.upstreamPort }] }],
  };
}

/** An upstream in `mode` and a sidecar in front of it. */
export interface Rig {
  upstream: UpstreamProcess;
  readonly sidecar: StaticSidecar;
  readonly url: string;
  stop(): Promise<void>;
}

export async function startRig(
  mode: UpstreamMode,
  options: {
    retry?: RetryPolicy;
    timeouts?: RouteTimeouts;
    limits?: NonNullable<Bootstrap['listeners']>[number]['limits'];
    stdout?: number | 'pipe' | 'ignore';
    extraArgs?: readonly string[];
    env?: NodeJS.ProcessEnv;
  } = {},
): Promise<Rig> {
  const upstream = await startUpstreamProcess(mode);
  const [adminPort, port] = (await freePorts(2)) as [number, number];
  let sidecar: StaticSidecar;
  try {
    sidecar = await startStaticSidecar(
      upstreamBootstrap({ adminPort, port, upstreamPort: upstream.port, ...options }),
      {
        ...(options.stdout !== undefined && { stdout: options.stdout }),
        ...(options.extraArgs && { extraArgs: options.extraArgs }),
        ...(options.env && { env: options.env }),
      },
    );
  } catch (err) {
    await upstream.stop();
    throw err;
  }
  const rig: Rig = {
    upstream,
    sidecar,
    url: `http://127.0.0.1:${port}`,
    async stop() {
      await sidecar.stop();
      await rig.upstream.stop();
    },
  };
  return rig;
}

function load(rig: Rig, ratePerSec: number, ok?: (s: number) => boolean, timeoutMs?: number): FixedRateLoad {
  return new FixedRateLoad({
    url: rig.url,
    // Enough sockets that requests waiting on a slow upstream never queue in the client.
    connections: 256,
    host: 'up',
    path: '/fault',
    ratePerSec,
    ...(ok !== undefined && { ok }),
    ...(timeoutMs !== undefined && { timeoutMs }),
  }).start();
}

async function sentAtLeast(l: FixedRateLoad, n: number): Promise<void> {
  await pollUntil(`${n} requests sent`, () => (l.sent >= n ? true : undefined), {
    timeoutMs: 60_000,
    intervalMs: 20,
  });
}

/** Waits until the sidecar's open descriptors are back within `slack` of `before`; the count. */
async function fdsSettle(pid: number, before: number, slack = 2): Promise<number> {
  let last = 0;
  await pollUntil(
    `sidecar descriptors back to ≤ ${before + slack}`,
    async () => {
      last = (await fdCount(pid)).fds;
      return last <= before + slack ? true : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 250 },
  ).catch(() => undefined);
  return last;
}

export interface UpstreamFaultFigures {
  readonly load: LoadFigures;
  readonly failuresByKind: Record<string, number>;
  readonly retries: number;
  readonly fdsBefore: number;
  readonly fdsPeak: number;
  readonly fdsAfter: number;
  readonly sidecarAlive: boolean;
}

function byKind(l: FixedRateLoad, figures: LoadFigures): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [status, n] of Object.entries(figures.statuses)) if (status !== '200') out[`HTTP ${status}`] = n;
  for (const [code, n] of Object.entries(figures.errors)) out[code] = n;
  void l;
  return out;
}

async function upstreamFault(
  rig: Rig,
  ratePerSec: number,
  fault: (l: FixedRateLoad) => Promise<void>,
  timeoutMs?: number,
): Promise<UpstreamFaultFigures> {
  // Warm-up: pools and listeners allocated before the count is taken.
  const warm = load(rig, ratePerSec, () => true, timeoutMs);
  await sentAtLeast(warm, ratePerSec);
  await warm.stop();
  const fdsBefore = (await fdCount(rig.sidecar.pid)).fds;
  const l = load(rig, ratePerSec, undefined, timeoutMs);
  let fdsPeak = fdsBefore;
  const sampler = setInterval(() => {
    fdCount(rig.sidecar.pid).then(
      (c) => {
        fdsPeak = Math.max(fdsPeak, c.fds);
      },
      () => undefined,
    );
  }, 200);
  try {
    await fault(l);
  } finally {
    clearInterval(sampler);
  }
  const figures = await l.stop();
  const retries = metricSum(await rig.sidecar.metrics(), 'weft_retries_total');
  const fdsAfter = await fdsSettle(rig.sidecar.pid, fdsBefore);
  return {
    load: figures,
    failuresByKind: byKind(l, figures),
    retries,
    fdsBefore,
    fdsPeak,
    fdsAfter,
    sidecarAlive: rig.sidecar.running,
  };
}

/** SIGKILL the streaming upstream mid-response under load, restart it on its port after `downMs`. */
export async function upstreamKilledMidRequest(options: {
  ratePerSec: number;
  phaseMs: number;
  downMs: number;
}): Promise<UpstreamFaultFigures & { readonly recovered: boolean }> {
  const rig = await startRig('stream', {
    retry: { numRetries: 2, retryOnConnectFailure: true, retryOnReset: true },
  });
  try {
    const figures = await upstreamFault(rig, options.ratePerSec, async (l) => {
      await sentAtLeast(l, Math.round((options.ratePerSec * options.phaseMs) / 1000));
      const port = rig.upstream.port;
      await rig.upstream.kill();
      await new Promise((r) => setTimeout(r, options.downMs)); // the outage itself
      rig.upstream = await startUpstreamProcess('stream', port);
      await sentAtLeast(l, l.sent + Math.round((options.ratePerSec * options.phaseMs) / 1000));
    });
    const res = await request(`${rig.url}/after`, { headers: { host: 'up' } });
    await res.body.dump();
    return { ...figures, recovered: res.statusCode === 200 };
  } finally {
    await rig.stop();
  }
}

/** An upstream that never answers, behind a route with a 1 s request timeout. */
export async function upstreamHangs(options: {
  ratePerSec: number;
  phaseMs: number;
}): Promise<UpstreamFaultFigures> {
  const rig = await startRig('hang', { timeouts: { requestMs: 1000 } });
  try {
    return await upstreamFault(
      rig,
      options.ratePerSec,
      async (l) => {
        await sentAtLeast(l, Math.round((options.ratePerSec * options.phaseMs) / 1000));
      },
      5000,
    );
  } finally {
    await rig.stop();
  }
}

/** An upstream closing its idle keep-alive connections every second (keep-alive timeout 1 s). */
export async function upstreamClosesKeepAlive(options: {
  ratePerSec: number;
  phaseMs: number;
}): Promise<UpstreamFaultFigures> {
  const rig = await startRig('closing');
  try {
    return await upstreamFault(rig, options.ratePerSec, async (l) => {
      await sentAtLeast(l, Math.round((options.ratePerSec * options.phaseMs) / 1000));
    });
  } finally {
    await rig.stop();
  }
}

/** Parses wrk's summary: requests, non-2xx, socket errors, requests/s. */
function parseWrk(text: string): { requests: number; non2xx: number; socketErrors: number; rps: number } {
  const requests = Number(/(\d+) requests in/.exec(text)?.[1] ?? 0);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0);
  const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const socketErrors = se === null ? 0 : se.slice(1).reduce((a, b) => a + Number(b), 0);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? 0);
  return { requests, non2xx, socketErrors, rps };
}

/** Runs wrk against `url` with `Host: up`; resolves with its output (killed by pid on timeout). */
function wrk(url: string, connections: number, durationS: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'wrk',
      [
        '-t',
        '2',
        '-c',
        String(connections),
        '-d',
        `${durationS}s`,
        '-H',
        'Host: up',
        '--timeout',
        '10s',
        `${url}/overload`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      out += c.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), (durationS + 30) * 1000);
    child.once('error', reject);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

export interface OverloadFigures {
  readonly wrk: { requests: number; non2xx: number; socketErrors: number; rps: number };
  readonly shed: { active_requests: number; event_loop_delay: number };
  readonly ready: { probes: number; ok: number; maxMs: number };
  readonly eventLoopDelayMaxMs: number;
  readonly rssBeforeMiB: number;
  readonly rssMaxMiB: number;
  /** RSS maxima over the first and the second half of the run: a plateau means memory is bounded. */
  readonly rssMaxFirstHalfMiB: number;
  readonly rssMaxSecondHalfMiB: number;
  readonly recovered: { ok: number; of: number };
  readonly fdsBefore: number;
  readonly fdsAfter: number;
  /** RSS every 10th probe (about once a second), MiB. */
  readonly rssSeriesMiB: readonly number[];
}

/**
 * wrk with `connections` connections for `durationS` against a listener admitting
 * `maxActiveRequests` (event-loop trigger at `maxEventLoopDelayMs`) in front of a slow (200 ms)
 * upstream; /ready probed every 100 ms meanwhile.
 */
export async function overload(options: {
  durationS: number;
  connections: number;
  maxActiveRequests: number;
  maxEventLoopDelayMs: number;
}): Promise<OverloadFigures> {
  const rig = await startRig('slow', {
    limits: {
      maxActiveRequests: options.maxActiveRequests,
      maxEventLoopDelayMs: options.maxEventLoopDelayMs,
    },
  });
  try {
    const rssBeforeMiB = await rssMiB(rig.sidecar.pid);
    const fdsBefore = (await fdCount(rig.sidecar.pid)).fds;
    let rssMaxMiB = rssBeforeMiB;
    const rssSeries: number[] = [];
    let eventLoopDelayMaxMs = 0;
    const ready = { probes: 0, ok: 0, maxMs: 0 };
    let probing = true;
    const prober = (async () => {
      while (probing) {
        const t0 = performance.now();
        try {
          const res = await request(`${rig.sidecar.adminUrl}/ready`, { headersTimeout: 5000 });
          await res.body.dump();
          if (res.statusCode === 200) ready.ok++;
        } catch {
          // counted as a failed probe
        }
        ready.probes++;
        ready.maxMs = Math.max(ready.maxMs, Math.round(performance.now() - t0));
        const rss = await rssMiB(rig.sidecar.pid).catch(() => 0);
        rssSeries.push(rss);
        rssMaxMiB = Math.max(rssMaxMiB, rss);
        const m = await rig.sidecar.metrics().catch(() => '');
        eventLoopDelayMaxMs = Math.max(
          eventLoopDelayMaxMs,
          metricSum(m, 'weft_event_loop_delay_seconds') * 1000,
        );
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const out = await wrk(rig.url, options.connections, options.durationS);
    probing = false;
    await prober;
    const metrics = await rig.sidecar.metrics();
    const shed = {
      active_requests: metricSum(metrics, 'weft_overload_shed_total', 'reason="active_requests"'),
      event_loop_delay: metricSum(metrics, 'weft_overload_shed_total', 'reason="event_loop_delay"'),
    };
    // Recovery: once the load is gone, sequential requests succeed.
    let ok = 0;
    const of = 20;
    for (let i = 0; i < of; i++) {
      const res = await request(`${rig.url}/after`, { headers: { host: 'up' } });
      await res.body.dump();
      if (res.statusCode === 200) ok++;
    }
    const fdsAfter = await fdsSettle(rig.sidecar.pid, fdsBefore);
    return {
      wrk: parseWrk(out),
      shed,
      ready,
      eventLoopDelayMaxMs: Math.round(eventLoopDelayMaxMs),
      rssBeforeMiB,
      rssMaxMiB,
      rssMaxFirstHalfMiB: Math.max(rssBeforeMiB, ...rssSeries.slice(0, Math.floor(rssSeries.length / 2))),
      rssMaxSecondHalfMiB: Math.max(rssBeforeMiB, ...rssSeries.slice(Math.floor(rssSeries.length / 2))),
      rssSeriesMiB: rssSeries.filter((_, i) => i % 10 === 0).map(Math.round),
      recovered: { ok, of },
      fdsBefore,
      fdsAfter,
    };
  } finally {
    await rig.stop();
  }
}

export interface LogFigures {
  readonly destination: string;
  readonly load: LoadFigures;
  readonly droppedLines: number;
  readonly writeErrors: number;
  readonly sidecarAlive: boolean;
}

/**
 * The access log (every request) to `destination`: `blocked-pipe` (a FIFO opened read-write by
 * the test and never read: the kernel buffer fills and writes stall) or `/dev/full` (every write
 * fails with ENOSPC). Load at `ratePerSec` for `durationMs`.
 */
export async function logDestinationFails(options: {
  destination: 'blocked-pipe' | '/dev/full';
  ratePerSec: number;
  durationMs: number;
}): Promise<LogFigures> {
  const dir = await mkdtemp(join(tmpdir(), 'weft-faults-log-'));
  let fd: number;
  if (options.destination === 'blocked-pipe') {
    const fifo = join(dir, 'access.fifo');
    await new Promise<void>((resolve, reject) => {
      const mk = spawn('mkfifo', [fifo]);
      mk.once('error', reject);
      mk.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`mkfifo exited ${code}`))));
    });
    fd = openSync(fifo, 'r+'); // read-write: the open does not wait for a reader; nobody reads
  } else {
    fd = openSync('/dev/full', 'w');
  }
  try {
    // A 64 KiB log buffer (instead of 1 MiB) so that a short run fills it.
    const rig = await startRig('ok', {
      stdout: fd,
      extraArgs: ['--access-log'],
      env: { WEFT_LOG_MAX_BUFFER_BYTES: String(64 * 1024) },
    });
    try {
      const l = load(rig, options.ratePerSec);
      await sentAtLeast(l, Math.round((options.ratePerSec * options.durationMs) / 1000));
      const figures = await l.stop();
      const metrics = await rig.sidecar.metrics();
      return {
        destination: options.destination,
        load: figures,
        droppedLines: metricSum(metrics, 'weft_log_dropped_lines_total'),
        writeErrors: metricSum(metrics, 'weft_log_write_errors_total'),
        sidecarAlive: rig.sidecar.running,
      };
    } finally {
      await rig.stop();
    }
  } finally {
    closeSync(fd);
    await rm(dir, { recursive: true, force: true });
  }
}
