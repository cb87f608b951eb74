/**
 * The overload manager: sheds new requests with 503 `OVERLOADED` before the process falls over,
 * in the spirit of Envoy's overload manager. Two triggers, checked when a request arrives on a
 * listener (before any routing work):
 *
 * - active requests: the listener already handles `maxActiveRequests` requests (default 4096;
 *   0 turns the bound off) — bounds memory and upstream concurrency per listener;
 * - event-loop delay: the process's event loop ran `maxEventLoopDelayMs` or more late (p99 of the
 *   last 250 ms window, `perf_hooks.monitorEventLoopDelay`, 10 ms resolution) — sheds when the
 *   process has more work than CPU. Off by default (0): a busy shared host's GC pauses would shed
 *   healthy traffic; turn it on per listener (`limits.maxEventLoopDelayMs`).
 *
 * A shed request gets the local reply at once (no body read, no upstream). Nothing else is
 * refused: the admin listener (/ready, /metrics) is a separate server and never shed. Figures:
 * `weft_overload_shed_total{reason}` (active_requests | event_loop_delay) and
 * `weft_event_loop_delay_seconds` (the last window's p99), registered by `registerOverloadMetrics`.
 *
 * Invariants: one process-wide event-loop monitor (started by the first listener that asks for
 * it, its timer unref'ed); the check is two comparisons on the hot path.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge, type Registry } from 'prom-client';

/** A listener's overload thresholds (proto `HttpConnectionLimits` fields 14-15). */
export interface OverloadLimits {
  /** Requests in progress on the listener beyond which new ones are shed (0: no bound). */
  readonly maxActiveRequests: number;
  /** Event-loop delay (ms, p99 of the last window) at or beyond which requests are shed (0: off). */
  readonly maxEventLoopDelayMs: number;
}

export const OVERLOAD_DEFAULTS: OverloadLimits = { maxActiveRequests: 4096, maxEventLoopDelayMs: 0 };

/** Why a request was shed (the `reason` label). */
export type ShedReason = 'active_requests' | 'event_loop_delay';

const WINDOW_MS = 250;

let histogram: ReturnType<typeof monitorEventLoopDelay> | undefined;
let delayMs = 0;
const shed: Record<ShedReason, number> = { active_requests: 0, event_loop_delay: 0 };

/** Starts the process-wide event-loop monitor (idempotent). */
export function watchEventLoop(): void {
  if (histogram !== undefined) return;
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  histogram = h;
  setInterval(() => {
    delayMs = h.count > 0 ? h.percentile(99) / 1e6 : 0;
    h.reset();
  }, WINDOW_MS).unref();
}

/** The last window's event-loop delay (p99, ms); 0 before the monitor runs. */
export function eventLoopDelayMs(): number {
  return delayMs;
}

/**
 * Whether a request arriving on a listener with `active` requests in progress (itself included)
 * is to be shed, and why; undefined to admit it. Counts what it sheds.
 */
export function shedReason(active: number, limits: OverloadLimits): ShedReason | undefined {
  if (limits.maxActiveRequests > 0 && active > limits.maxActiveRequests) {
    shed.active_requests++;
    return 'active_requests';
  }
  if (limits.maxEventLoopDelayMs > 0 && delayMs >= limits.maxEventLoopDelayMs) {
    shed.event_loop_delay++;
    return 'event_loop_delay';
  }
  return undefined;
}

/** A listener's limits with the defaults filled in; starts the monitor when the delay trigger is on. */
export function overloadLimits(limits: Partial<OverloadLimits> | undefined): OverloadLimits {
  const out = {
    maxActiveRequests: limits?.maxActiveRequests ?? OVERLOAD_DEFAULTS.maxActiveRequests,
    maxEventLoopDelayMs: limits?.maxEventLoopDelayMs ?? OVERLOAD_DEFAULTS.maxEventLoopDelayMs,
  };
  if (out.maxEventLoopDelayMs > 0) watchEventLoop();
  return out;
}

/** Registers `weft_overload_shed_total{reason}` and `weft_event_loop_delay_seconds` on `registry`. */
export function registerOverloadMetrics(registry: Registry): void {
  watchEventLoop();
  new Counter({
    name: 'weft_overload_shed_total',
    help: 'Requests shed with 503 OVERLOADED by the overload manager, by trigger',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(shed)) this.inc({ reason }, n);
    },
  });
  new Gauge({
    name: 'weft_event_loop_delay_seconds',
    help: 'Event-loop delay of the proxy process: p99 over the last 250 ms window',
    registers: [registry],
    collect() {
      this.set(delayMs / 1000);
    },
  });
}
