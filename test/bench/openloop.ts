/**
 * Open-loop constant-rate load generator (a child process of `run.ts`, over an IPC channel).
 *
 *   node test/bench/openloop.ts --url http://127.0.0.1:8080/ --rate 2000 --duration 10 --warmup 1
 *
 * Request i is *scheduled* at t0 + i/rate, whether or not earlier requests have completed (open
 * loop): a ticker worker thread (ticker.ts) wakes this thread at each scheduled time, with
 * sub-millisecond precision, and it sends everything whose time has come through an undici Pool. Latency is measured from the scheduled time, not the actual send, so a stall in the
 * target (or queueing for a free connection) shows up in the tail instead of silently slowing the
 * generator down (coordinated omission). Successful (2xx) latencies go into an HDR histogram in
 * microseconds; non-2xx responses and transport errors are counted.
 *
 * Messages to the parent: `measuring` when the first measured (post-warm-up) request is due,
 * `sending-done` when the last one has been sent (the parent samples the target's CPU at both),
 * then `result` once in-flight requests have finished (or timed out).
 */
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import * as hdr from 'hdr-histogram-js';
import { Pool } from 'undici';
import type { TickerData, TickerStart } from './ticker.ts';

export interface LatencySummaryMs {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  readonly mean: number;
}

export interface OpenLoopResult {
  readonly rate: number;
  readonly durationS: number;
  readonly warmupS: number;
  readonly connections: number;
  /** Measured requests scheduled (rate x duration). */
  readonly scheduled: number;
  readonly ok: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly errorKinds: Readonly<Record<string, number>>;
  /** Measured requests still in flight when the drain deadline passed (also counted in `errors`). */
  readonly unfinished: number;
  /** 2xx responses per second of the measured sending window. */
  readonly achievedRate: number;
  /** Latency of 2xx responses, from scheduled send time to end of body. */
  readonly latencyMs: LatencySummaryMs;
  /** How late the generator itself sent requests (its own scheduling delay). */
  readonly sendLagMs: { readonly p99: number; readonly max: number };
}

export type OpenLoopMessage =
  | { readonly type: 'measuring' }
  | { readonly type: 'sending-done' }
  | { readonly type: 'result'; readonly result: OpenLoopResult };

export function isOpenLoopMessage(message: unknown): message is OpenLoopMessage {
  if (typeof message !== 'object' || message === null) return false;
  const type = (message as { type?: unknown }).type;
  return type === 'measuring' || type === 'sending-done' || type === 'result';
}

const DRAIN_DEADLINE_MS = 10_000;
const HIGHEST_US = 60_000_000;

/** Sends a message to the parent (or prints the result when run by hand); resolves once written. */
function send(message: OpenLoopMessage): Promise<void> {
  return new Promise((resolve) => {
    if (process.send) process.send(message, () => resolve());
    else {
      if (message.type === 'result') process.stdout.write(`${JSON.stringify(message.result, null, 2)}\n`);
      resolve();
    }
  });
}

function positive(name: string, raw: string | undefined, fallback: number): number {
  const value = raw === undefined ? fallback : Number(raw);
  if (!Number.isFinite(value) || value < 0)
    throw new Error(`--${name} must be a non-negative number, got ${raw}`);
  return value;
}

function summarize(histogram: hdr.Histogram): LatencySummaryMs {
  const ms = (us: number): number => us / 1000;
  if (histogram.totalCount === 0) return { p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 };
  return {
    p50: ms(histogram.getValueAtPercentile(50)),
    p90: ms(histogram.getValueAtPercentile(90)),
    p99: ms(histogram.getValueAtPercentile(99)),
    p999: ms(histogram.getValueAtPercentile(99.9)),
    max: ms(histogram.maxValue),
    mean: ms(histogram.mean),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      rate: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
    },
  });
  if (!values.url) throw new Error('--url is required');
  const url = new URL(values.url);
  const rate = positive('rate', values.rate, 2000);
  const durationS = positive('duration', values.duration, 10);
  const warmupS = positive('warmup', values.warmup, 1);
  const connections = Math.max(1, Math.round(positive('connections', values.connections, 50)));
  if (rate === 0) throw new Error('--rate must be > 0');

  const pool = new Pool(url.origin, {
    connections,
    pipelining: 1,
    headersTimeout: DRAIN_DEADLINE_MS,
    bodyTimeout: DRAIN_DEADLINE_MS,
    keepAliveTimeout: 60_000,
  });
  const path = `${url.pathname}${url.search}`;
  const histogramOptions: hdr.BuildRequest = {
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_US,
    numberOfSignificantValueDigits: 3,
  };
  const latency = hdr.build(histogramOptions);
  const sendLag = hdr.build(histogramOptions);
  const record = (histogram: hdr.Histogram, us: number): void => {
    histogram.recordValue(Math.min(HIGHEST_US, Math.max(1, Math.round(us))));
  };

  const intervalNs = 1e9 / rate;
  const warmupCount = Math.round(rate * warmupS);
  const measuredCount = Math.round(rate * durationS);
  const total = warmupCount + measuredCount;
  const baseNs = process.hrtime.bigint();
  const nowNs = (): number => Number(process.hrtime.bigint() - baseNs);
  let ok = 0;
  let non2xx = 0;
  let errors = 0;
  const errorKinds: Record<string, number> = {};
  let inFlight = 0;
  let measuredInFlight = 0;
  let idle: (() => void) | undefined;

  const fire = async (scheduledAtNs: number, measured: boolean): Promise<void> => {
    inFlight++;
    if (measured) measuredInFlight++;
    try {
      const { statusCode, body } = await pool.request({ path, method: 'GET' });
      await body.dump();
      const elapsedUs = (nowNs() - scheduledAtNs) / 1000;
      if (!measured) return;
      if (statusCode >= 200 && statusCode < 300) {
        ok++;
        record(latency, elapsedUs);
      } else {
        non2xx++;
      }
    } catch (err) {
      if (!measured) return;
      errors++;
      const kind = (err as { code?: string }).code ?? (err instanceof Error ? err.name : 'error');
      errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
    } finally {
      inFlight--;
      if (measured) measuredInFlight--;
      if (inFlight === 0) idle?.();
    }
  };

  const tickerData: TickerData = { baseNs, intervalNs, count: total };
  const ticker = new Worker(new URL('./ticker.ts', import.meta.url), { workerData: tickerData });
  await once(ticker, 'online');
  const startNs = nowNs() + 5e6;
  let sent = 0;
  if (warmupCount === 0) void send({ type: 'measuring' });
  await new Promise<void>((resolve, reject) => {
    // Sends every request whose scheduled time has come; woken by the ticker thread.
    let done = false;
    const tick = (): void => {
      if (done) return;
      const now = nowNs();
      while (sent < total) {
        const scheduledAt = startNs + sent * intervalNs;
        if (scheduledAt > now) break;
        const measured = sent >= warmupCount;
        if (sent === warmupCount && warmupCount > 0) void send({ type: 'measuring' });
        if (measured) record(sendLag, (now - scheduledAt) / 1000);
        void fire(scheduledAt, measured);
        sent++;
      }
      if (sent >= total) {
        done = true;
        ticker.off('message', tick);
        void send({ type: 'sending-done' });
        resolve();
      }
    };
    ticker.on('message', tick);
    ticker.once('error', reject);
    ticker.once('exit', () => {
      tick();
      if (sent < total) reject(new Error(`ticker stopped after ${sent} of ${total} requests`));
    });
    const start: TickerStart = { startNs };
    ticker.postMessage(start);
  });

  if (inFlight > 0) {
    await new Promise<void>((resolve) => {
      idle = resolve;
      setTimeout(resolve, DRAIN_DEADLINE_MS).unref();
    });
  }
  const unfinished = measuredInFlight;
  if (unfinished > 0) {
    errors += unfinished;
    errorKinds.unfinished = (errorKinds.unfinished ?? 0) + unfinished;
  }
  const windowS = measuredCount / rate;
  await send({
    type: 'result',
    result: {
      rate,
      durationS,
      warmupS,
      connections,
      scheduled: measuredCount,
      ok,
      non2xx,
      errors,
      errorKinds,
      unfinished,
      achievedRate: ok / windowS,
      latencyMs: summarize(latency),
      sendLagMs: { p99: sendLag.getValueAtPercentile(99) / 1000, max: sendLag.maxValue / 1000 },
    },
  });
  // Do not wait for a graceful pool close if requests are stuck; the parent is done with us.
  void pool.destroy();
  process.disconnect?.();
  process.exit(0);
}

if (import.meta.main) {
  main().catch((err: unknown) => {
    process.stderr.write(`openloop: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
