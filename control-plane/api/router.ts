/**
 * A tiny router for the admin API: an ordered list of (method, path pattern, handler). The first
 * route whose pattern matches the path wins; a path that matches with another method gets 405
 * (with `Allow`), a path that matches nothing gets 404. Path parameters are the pattern's capture
 * groups, percent-decoded.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError } from './http.ts';

/** What a handler sees for one request. */
export interface RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  /** Decoded capture groups of the matched pattern, in order. */
  readonly params: readonly string[];
  /** Aborted when the client goes away before the reply is written. */
  readonly signal: AbortSignal;
}

/** A handler resolves with the JSON body of a 200 reply, or throws `ApiError`. */
export type Handler = (ctx: RequestContext) => Promise<unknown>;

export interface Route {
  readonly method: 'GET' | 'POST' | 'DELETE';
  /** Anchored regular expression over the URL path. */
  readonly pattern: RegExp;
  readonly handler: Handler;
}

/**
 * Finds the route for `method` and `path`; returns the handler and decoded params.
 * Throws `ApiError(404)` for an unknown path and `ApiError(405)` for a known path with another method.
 */
export function match(
  routes: readonly Route[],
  method: string,
  path: string,
): { handler: Handler; params: string[] } {
  const allowed: string[] = [];
  for (const route of routes) {
    const m = route.pattern.exec(path);
    if (!m) continue;
    if (route.method !== method) {
      allowed.push(route.method);
      continue;
    }
    try {
      return { handler: route.handler, params: m.slice(1).map((p) => decodeURIComponent(p ?? '')) };
    } catch {
      throw new ApiError(400, 'malformed percent-encoding in path');
    }
  }
  if (allowed.length > 0) {
    throw new ApiError(405, `method ${method} not allowed`, { headers: { allow: allowed.join(', ') } });
  }
  throw new ApiError(404, `no such endpoint: ${path}`);
}
