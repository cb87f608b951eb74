/**
 * Request checks that Node's HTTP/1.1 parser (llhttp, strict) leaves to the application, run
 * before anything is routed or forwarded. Each returns the error kind and reason of the first
 * defect, or undefined:
 *
 * - the request target is longer than the listener's `maxRequestUrlBytes` (default 8192) → 414
 *   URI_TOO_LONG (RFC 9110 §15.5.15);
 * - a fragment (`#`) in the target (RFC 9112 §3.2: the target has none) → 400;
 * - more than one `Host` (RFC 9112 §3.2), or a `Host` that is not `uri-host [":" port]`
 *   (RFC 9110 §7.2, RFC 3986 §3.2.2) → 400;
 * - more than one `Authorization` or `Proxy-Authorization` (singleton fields, RFC 9110 §11.6.2,
 *   §11.7.2: two credentials leave it open which one a later hop checks) → 400;
 * - `Transfer-Encoding` in an HTTP/1.0 request (RFC 9112 §6.1: a 1.0 recipient cannot be told
 *   the framing; the request may be smuggled) → 400;
 * - an encoded `/` or `\` (`%2F`, `%5C`) in the path → 400: after normalization a rule written
 *   for `/admin/*` would not see `/admin%2Fx`, while the application may decode it to `/admin/x`
 *   (Envoy's `path_with_escaped_slashes_action: REJECT_REQUEST`).
 */
import type { ErrorKind } from '../errors.ts';

/** Default `HttpConnectionLimits.maxRequestUrlBytes`. */
export const DEFAULT_MAX_REQUEST_URL_BYTES = 8192;

export interface RequestDefect {
  readonly kind: ErrorKind;
  readonly reason: string;
}

/** The parts of a request the checks read (node:http's IncomingMessage has them). */
export interface CheckedRequest {
  readonly url?: string | undefined;
  readonly httpVersion: string;
  readonly rawHeaders: readonly string[];
}

/** RFC 3986 reg-name / IPv4 (unreserved, sub-delims, pct-encoded) or an IP literal, then an optional port. */
const HOST_FIELD = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]*)?$/;
const ENCODED_SEPARATOR = /%(?:2f|5c)/i;

/** The first defect of `req`, or undefined; `maxUrlBytes` bounds the request target. */
export function requestDefect(req: CheckedRequest, maxUrlBytes: number): RequestDefect | undefined {
  const url = req.url ?? '/';
  if (url.length > maxUrlBytes) {
    return { kind: 'URI_TOO_LONG', reason: `the request target is longer than ${maxUrlBytes} bytes` };
  }
  if (url.includes('#')) return { kind: 'BAD_REQUEST', reason: 'a fragment (#) in the request target' };
  let hosts = 0;
  let authorizations = 0;
  let proxyAuthorizations = 0;
  let transferEncoding = false;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (name === 'host') {
      hosts++;
      if (!HOST_FIELD.test(raw[i + 1] as string))
        return { kind: 'BAD_REQUEST', reason: 'an invalid Host field' };
    } else if (name === 'authorization') authorizations++;
    else if (name === 'proxy-authorization') proxyAuthorizations++;
    else if (name === 'transfer-encoding') transferEncoding = true;
  }
  if (hosts > 1) return { kind: 'BAD_REQUEST', reason: 'more than one Host field' };
  if (authorizations > 1) return { kind: 'BAD_REQUEST', reason: 'more than one Authorization field' };
  if (proxyAuthorizations > 1)
    return { kind: 'BAD_REQUEST', reason: 'more than one Proxy-Authorization field' };
  if (transferEncoding && req.httpVersion === '1.0') {
    return { kind: 'BAD_REQUEST', reason: 'Transfer-Encoding in an HTTP/1.0 request' };
  }
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  if (ENCODED_SEPARATOR.test(path)) {
    return { kind: 'BAD_REQUEST', reason: 'an encoded path separator (%2F or %5C) in the path' };
  }
  return undefined;
}
