/**
 * Telemetry hand-off through `diagnostics_channel` (as undici does): the hot path publishes a
 * finished request's context once; metrics and access logs subscribe. With no subscriber the
 * publish is a single `hasSubscribers` check.
 *
 * Channels: `weft:request:end` — message: the `RequestContext` of a finished request.
 */
import diagnostics from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import type { RequestContext } from '../http/context.ts';

export const requestEnd = diagnostics.channel('weft:request:end');

const published = new WeakSet<RequestContext>();

/** Records the duration and publishes `ctx` on `weft:request:end`, once per request. */
export function completeRequest(ctx: RequestContext): void {
  if (published.has(ctx)) return;
  published.add(ctx);
  ctx.durationMs = performance.now() - ctx.startMs;
  if (ctx.status === 0) ctx.status = ctx.flags === 'DOWNSTREAM_DISCONNECT' ? 499 : 0;
  if (requestEnd.hasSubscribers) requestEnd.publish(ctx);
}
