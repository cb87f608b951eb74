/**
 * Checks of a downstream HTTP/2 request that node:http2 leaves to the application, run before the
 * pipeline (whose request-checks.ts apply to both versions). Returns the first defect, or undefined:
 *
 * - more regular header fields than `maxRequestHeadersCount` (pseudo-header fields not counted)
 *   → 431 (RFC 6585 §5);
 * - a header list larger than `maxRequestHeadersBytes`, counted as SETTINGS_MAX_HEADER_LIST_SIZE
 *   is (RFC 9113 §6.5.2: name + value + 32 octets per field, RFC 7541 §4.1) → 431. node:http2
 *   enforces its advertised SETTINGS_MAX_HEADER_LIST_SIZE only once the client ACKed our SETTINGS;
 *   a request sent before that ACK (every client's first request can be) would pass unchecked;
 * - a `host` field that differs from `:authority` → 400 (RFC 9113 §8.3.1: a server SHOULD treat
 *   the request as malformed; the router routes on `:authority`, an HTTP/1.1 upstream would be
 *   told the other).
 */
import type { RequestDefect } from './request-checks.ts';

/** What the checks read of an `Http2ServerRequest`. */
export interface H2CheckedRequest {
  readonly rawHeaders: readonly string[];
}

/** Per-field overhead of the header list size (RFC 7541 §4.1). */
const FIELD_OVERHEAD = 32;

/** The first defect of `req`, or undefined. */
export function h2RequestDefect(
  req: H2CheckedRequest,
  maxHeadersCount: number,
  maxHeadersBytes: number,
): RequestDefect | undefined {
  const raw = req.rawHeaders;
  let fields = 0;
  let bytes = 0;
  let authority: string | undefined;
  let host: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    bytes += name.length + value.length + FIELD_OVERHEAD;
    if (name.charCodeAt(0) !== 58) fields++;
    if (name === ':authority') authority = value;
    else if (name === 'host') host = value;
  }
  if (fields > maxHeadersCount) {
    return { kind: 'REQUEST_HEADERS_TOO_LARGE', reason: `more than ${maxHeadersCount} header fields` };
  }
  if (bytes > maxHeadersBytes) {
    return {
      kind: 'REQUEST_HEADERS_TOO_LARGE',
      reason: `a header list larger than ${maxHeadersBytes} bytes`,
    };
  }
  if (authority !== undefined && host !== undefined && authority.toLowerCase() !== host.toLowerCase()) {
    return { kind: 'BAD_REQUEST', reason: 'the Host field differs from :authority' };
  }
  return undefined;
}
