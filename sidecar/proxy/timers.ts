/**
 * One shared coarse timer for every request-scoped deadline (request, backend-request and
 * idle timeouts), in the manner of undici's fast timers: a single interval scans the armed
 * entries instead of one `setTimeout` per request. Precision is one tick (`TICK_MS`, 50 ms),
 * which is ample for timeouts measured in hundreds of milliseconds or more.
 *
 * Invariants: an entry fires at most once, never before its deadline, and not at all once
 * cancelled. The interval runs only while entries are armed and never keeps the process alive.
 */

export const TICK_MS = 50;

/** Something with a deadline; `onTimeout` runs on the timer tick at or after `deadlineMs`. */
export interface TimerEntry {
  deadlineMs: number;
  onTimeout(): void;
}

const armed = new Set<TimerEntry>();
let interval: NodeJS.Timeout | undefined;
/** Coarse clock (ms since epoch), refreshed every tick; cheap to read on the hot path. */
let nowMs = Date.now();

function tick(): void {
  nowMs = Date.now();
  for (const entry of armed) {
    if (entry.deadlineMs <= nowMs) {
      armed.delete(entry);
      entry.onTimeout();
    }
  }
  if (armed.size === 0 && interval !== undefined) {
    clearInterval(interval);
    interval = undefined;
  }
}

/** Arms `entry` to fire `afterMs` milliseconds from now (ms, > 0). */
export function armTimer(entry: TimerEntry, afterMs: number): void {
  entry.deadlineMs = Date.now() + afterMs;
  armed.add(entry);
  if (interval === undefined) {
    interval = setInterval(tick, TICK_MS);
    interval.unref();
  }
}

/** Disarms `entry`; a no-op when it is not armed. */
export function cancelTimer(entry: TimerEntry): void {
  armed.delete(entry);
}

/** Milliseconds since epoch, accurate to one tick while timers are armed. */
export function coarseNowMs(): number {
  return interval === undefined ? Date.now() : nowMs;
}
