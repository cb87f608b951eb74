/**
 * The request body limit (`weft.filters.http.body_limit`) of a GATEWAY listener: the matched
 * route's `maxRequestBodyBytes`, else the listener's, else 8 MiB.
 *
 * - A declared `Content-Length` over the limit: 413 `REQUEST_BODY_TOO_LARGE` (RFC 9110 §15.5.14)
 *   before anything goes upstream.
 * - A body without a declared length (chunked) is counted as it streams: past the limit the
 *   upstream exchange is failed with `REQUEST_BODY_TOO_LARGE` (`ctx.exchange.fail`: the upstream
 *   request is aborted; the client gets 413 when no response head went out yet, else the stream is
 *   cut). Nothing past the limit is forwarded after the check (a chunk in flight may be).
 * Either way the connection is closed after the reply (the rest of the body is not read).
 *
 * Counting observes the request's 'data' events: the observer is attached with the request paused
 * (its consumers — undici's body writer and the retry body buffer — resume it), so no chunk is
 * emitted before they listen.
 */

import { CONTINUE, type FilterResult, type HttpFilter } from '../../../sidecar/proxy/filters/filter.ts';
import type { RequestContext } from '../../../sidecar/proxy/http/context.ts';
import type { EdgeRoutes } from './routes.ts';

export const BODY_LIMIT_FILTER_NAME = 'weft.filters.http.body_limit';
/** Default largest request body on a GATEWAY listener (bytes). */
export const DEFAULT_MAX_REQUEST_BODY_BYTES = 8 * 1024 * 1024;

const TOO_LARGE: FilterResult = Object.freeze({ kind: 'error', error: 'REQUEST_BODY_TOO_LARGE' });

/** Counts one request's streamed body against its limit. */
class BodyCounter {
  readonly #ctx: RequestContext;
  readonly #limit: number;
  #seen = 0;
  readonly onData = (chunk: Buffer): void => {
    this.#seen += chunk.length;
    if (this.#seen <= this.#limit) return;
    const ctx = this.#ctx;
    ctx.req.off('data', this.onData);
    ctx.res.shouldKeepAlive = false;
    ctx.req.pause();
    ctx.exchange?.fail('REQUEST_BODY_TOO_LARGE');
  };

  constructor(ctx: RequestContext, limit: number) {
    this.#ctx = ctx;
    this.#limit = limit;
  }
}

export class BodyLimitFilter implements HttpFilter {
  readonly name = BODY_LIMIT_FILTER_NAME;
  readonly #routes: EdgeRoutes;
  readonly #listenerLimit: number;

  constructor(routes: EdgeRoutes, listenerLimit: number) {
    this.#routes = routes;
    this.#listenerLimit = listenerLimit || DEFAULT_MAX_REQUEST_BODY_BYTES;
  }

  onRequest(ctx: RequestContext): FilterResult {
    const { req } = ctx;
    const declared = req.headers['content-length'];
    const chunked = req.headers['transfer-encoding'] !== undefined;
    if (declared === undefined && !chunked) return CONTINUE;
    const limit = this.#routes.lookup(ctx)?.maxRequestBodyBytes || this.#listenerLimit;
    if (declared !== undefined && !chunked) {
      if (Number(declared) <= limit) return CONTINUE;
      ctx.res.shouldKeepAlive = false;
      return TOO_LARGE;
    }
    const counter = new BodyCounter(ctx, limit);
    req.on('data', counter.onData);
    req.pause(); // its consumer resumes it: no chunk before it listens
    return CONTINUE;
  }
}
