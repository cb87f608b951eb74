/**
 * The HTTP filter contract (Envoy's `http/filter.h`, made small): a filter looks at a request
 * and answers with one member of a closed union. It may let the request continue, answer it
 * locally, or fail it with a named error kind; it never takes over control flow, and it never
 * touches the socket. The router is the terminal step after the last filter.
 */
import type { ErrorKind } from '../errors.ts';
import type { RequestContext } from '../http/context.ts';
import type { HeaderMap } from '../router/types.ts';

/** Go on to the next filter (a shared constant: continuing allocates nothing). */
export interface Continue {
  readonly kind: 'continue';
}
/** Answer the request locally with this status, headers and body. */
export interface Respond {
  readonly kind: 'respond';
  readonly status: number;
  readonly headers?: Readonly<Record<string, string | string[]>>;
  /** Text or bytes (a cached response); none for HEAD, 204 and 304. */
  readonly body?: string | Uint8Array;
}
/** Fail the request with a kind from the error catalogue (status, flag and log follow from it). */
export interface Fail {
  readonly kind: 'error';
  readonly error: ErrorKind;
  readonly detail?: string;
}
export type FilterResult = Continue | Respond | Fail;

export const CONTINUE: Continue = Object.freeze({ kind: 'continue' });

export interface HttpFilter {
  /** Registry name, reverse-DNS style: `weft.filters.http.<name>`. */
  readonly name: string;
  /** Runs before routing, in chain order. May return a promise (e.g. an auth look-up). */
  onRequest?(ctx: RequestContext): FilterResult | Promise<FilterResult>;
  /** Runs on the upstream response head before it is sent downstream; may edit `headers`. */
  onResponse?(ctx: RequestContext, status: number, headers: HeaderMap): void;
}
