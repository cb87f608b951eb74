/**
 * Sub-millisecond wake-ups for the open-loop generator, as a worker thread.
 *
 * Node timers have 1 ms granularity, which alone would add up to ~1 ms of send delay to every
 * request at 2000 req/s and swamp loopback latencies. This worker sleeps with `Atomics.wait`
 * (fractional-millisecond timeouts) until each request's scheduled time and then posts the index
 * of the last request that is due; the generator's main thread, idle in its event loop, wakes on
 * the message and sends everything due. Both threads read the same monotonic clock
 * (`process.hrtime.bigint()` relative to a shared base), so "due" means the same thing to both.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';

export interface TickerData {
  /** Shared clock origin: `process.hrtime.bigint()` taken by the main thread. */
  readonly baseNs: bigint;
  readonly intervalNs: number;
  readonly count: number;
}

/** Sent by the main thread to begin: request i is due at startNs + i * intervalNs (ns since baseNs). */
export interface TickerStart {
  readonly startNs: number;
}

function isTickerData(value: unknown): value is TickerData {
  const data = value as Partial<TickerData> | null;
  return (
    typeof data === 'object' &&
    data !== null &&
    typeof data.baseNs === 'bigint' &&
    typeof data.intervalNs === 'number' &&
    typeof data.count === 'number'
  );
}

function run(port: NonNullable<typeof parentPort>, data: TickerData, startNs: number): void {
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  const now = (): number => Number(process.hrtime.bigint() - data.baseNs);
  let next = 0;
  while (next < data.count) {
    const waitNs = startNs + next * data.intervalNs - now();
    if (waitNs > 0) Atomics.wait(sleeper, 0, 0, waitNs / 1e6);
    // Everything due by now goes in one message.
    const due = Math.min(data.count - 1, Math.floor((now() - startNs) / data.intervalNs));
    if (due < next) continue; // woke a little early
    port.postMessage(due);
    next = due + 1;
  }
  port.close();
}

if (!isMainThread && parentPort && isTickerData(workerData)) {
  const port = parentPort;
  const data = workerData;
  port.once('message', (message: TickerStart) => run(port, data, message.startNs));
}
