/**
 * Fault injection for one route, as Envoy's HTTP fault filter does it (and Envoy Gateway's
 * `faultInjection`): a share of requests is delayed, a share is aborted with a local reply.
 *
 * Per request, both shares are drawn when it arrives. A delay is waited out on the shared coarse
 * timer (timers.ts, one tick of precision); an abort then (after the delay when both hit, Envoy's
 * order) answers with the configured status and `x-weft-error: FAULT_INJECTED` (also the
 * `response_flags`). Otherwise the request goes on to its route action, as if nothing happened.
 *
 * Invariants: a client that leaves during the delay cancels it (the request ends as
 * DOWNSTREAM_DISCONNECT and is never forwarded); the delay runs before the route's request
 * timeout is armed, as in Envoy, where the fault filter holds the request before the router
 * starts its timers; nothing is allocated for a request the fault leaves alone.
 */
import { ERROR_CATALOGUE } from '../errors.ts';
import type { CompiledFault } from '../router/types.ts';
import { completeRequest } from '../telemetry/channels.ts';
import { armTimer, cancelTimer, type TimerEntry } from '../timers.ts';
import type { RequestContext } from './context.ts';
import { sendReply } from './local-reply.ts';

/** True for `percent` % of calls (0..100), by `random` in [0, 1). */
export function hits(percent: number, random: () => number): boolean {
  return percent > 0 && random() * 100 < percent;
}

/** Answers `ctx` with `status` as an injected abort (`x-weft-error: FAULT_INJECTED`). */
export function abortWithFault(ctx: RequestContext, status: number): void {
  ctx.flags = 'FAULT_INJECTED';
  sendReply(ctx, status, `${ERROR_CATALOGUE.FAULT_INJECTED.message}\n`, { 'x-weft-error': 'FAULT_INJECTED' });
}

/** A pending injected delay: resumes the request on the timer tick, or gives up when the client leaves. */
class FaultDelay implements TimerEntry {
  deadlineMs = 0;
  readonly #ctx: RequestContext;
  readonly #abortStatus: number;
  readonly #resume: () => void;
  readonly #onClose = (): void => {
    cancelTimer(this);
    this.#ctx.flags = 'DOWNSTREAM_DISCONNECT';
    this.#ctx.res.destroy();
    completeRequest(this.#ctx);
  };

  /** `abortStatus` 0: resume after the delay; otherwise abort with it then. */
  constructor(ctx: RequestContext, abortStatus: number, resume: () => void) {
    this.#ctx = ctx;
    this.#abortStatus = abortStatus;
    this.#resume = resume;
  }

  start(delayMs: number): void {
    this.#ctx.res.once('close', this.#onClose);
    armTimer(this, delayMs);
  }

  onTimeout(): void {
    this.#ctx.res.off('close', this.#onClose);
    if (this.#abortStatus !== 0) abortWithFault(this.#ctx, this.#abortStatus);
    else this.#resume();
  }
}

/**
 * Applies `fault` to `ctx`. Returns false when the request goes on at once (the caller
 * continues); true when the fault took it over: it was aborted, or it is delayed and `resume`
 * runs after the delay (unless the client left, or the abort hit as well).
 * `random` returns values in [0, 1) (injectable for tests).
 */
export function injectFault(
  ctx: RequestContext,
  fault: CompiledFault,
  random: () => number,
  resume: () => void,
): boolean {
  const delay = fault.delayMs > 0 && hits(fault.delayPercent, random);
  const abort = fault.abortStatus !== 0 && hits(fault.abortPercent, random);
  if (delay) {
    new FaultDelay(ctx, abort ? fault.abortStatus : 0, resume).start(fault.delayMs);
    return true;
  }
  if (abort) {
    abortWithFault(ctx, fault.abortStatus);
    return true;
  }
  return false;
}
