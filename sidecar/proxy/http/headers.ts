/**
 * Header handling for an HTTP intermediary (RFC 9110 §7.6.1, RFC 9112 §9.6):
 * hop-by-hop fields are removed in both directions, including every field named in
 * `Connection`; repeated fields keep their order (several `Set-Cookie` stay separate,
 * RFC 9110 §5.3); `X-Forwarded-For` is appended to (trusting the incoming list only as far as
 * the listener's `xffNumTrustedHops` says); the mesh's own `x-weft-*` request fields (forwarded
 * identity from the gateway, the attempt number) are taken only from a trusted downstream: the
 * local app (outbound listener) or a mesh peer over mTLS (inbound); a gateway listener and a
 * plain-text inbound connection drop them (`stripInternalFields`).
 *
 * Header maps are plain objects with lower-case names; a repeated field is an array.
 */
import type { HeaderMap } from '../router/types.ts';

/** Always hop-by-hop (RFC 9110 §7.6.1, RFC 9112 §9.6), plus the legacy `proxy-connection`. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Request-only fields the proxy consumes itself: `expect` (Node answers 100-continue). */
const CONSUMED_REQUEST = new Set(['expect', 'proxy-authorization']);

/** The mesh's own request fields (forwarded identity, attempt number): `x-weft-*`. */
const INTERNAL_PREFIX = 'x-weft-';

/**
 * Removes every `x-weft-*` field from `headers`, in place: for requests from outside the mesh
 * (a GATEWAY listener, or a plain-text connection to an inbound listener), which must not be able
 * to claim an identity the gateway vouches for (`x-weft-principal`, `x-weft-client-id`, ...).
 */
export function stripInternalFields(headers: HeaderMap): void {
  for (const name of Object.keys(headers)) if (name.startsWith(INTERNAL_PREFIX)) delete headers[name];
}

/** Names listed in a `Connection` header value (lower-case), or undefined when there are none. */
function connectionTokens(value: string | undefined): Set<string> | undefined {
  if (value === undefined || value === '') return undefined;
  const names = new Set<string>();
  for (const part of value.split(',')) {
    const name = part.trim().toLowerCase();
    if (name !== '') names.add(name);
  }
  return names;
}

function append(map: HeaderMap, name: string, value: string): void {
  const prev = map[name];
  if (prev === undefined) map[name] = value;
  else if (typeof prev === 'string') map[name] = [prev, value];
  else prev.push(value);
}

/**
 * Builds the upstream request header map from Node's `rawHeaders` (names as sent, in order):
 * hop-by-hop and consumed fields and HTTP/2 pseudo-header fields are dropped, repeated fields are
 * kept in order. (`TE: trailers` is dropped here too; the forwarder asks an HTTP/2 upstream for
 * trailers itself when the downstream can take them.)
 * `connectionHeader` is the joined `Connection` value Node parsed (may be undefined).
 */
export function upstreamRequestHeaders(
  rawHeaders: readonly string[],
  connectionHeader: string | undefined,
): HeaderMap {
  const listed = connectionTokens(connectionHeader);
  const out: HeaderMap = {};
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const raw = rawHeaders[i] as string;
    if (raw.charCodeAt(0) === 58) continue; // an HTTP/2 pseudo-header (`:method`, ...)
    const name = raw.toLowerCase();
    if (HOP_BY_HOP.has(name) || CONSUMED_REQUEST.has(name) || listed?.has(name)) continue;
    append(out, name, rawHeaders[i + 1] as string);
  }
  return out;
}

/**
 * Removes hop-by-hop fields from an upstream response header map (as undici parses it:
 * lower-case names, repeated fields as arrays) in place, and returns it.
 */
export function stripResponseHopByHop(headers: HeaderMap): HeaderMap {
  const connection = headers.connection;
  const listed = connectionTokens(Array.isArray(connection) ? connection.join(',') : connection);
  for (const name of HOP_BY_HOP) delete headers[name];
  if (listed !== undefined) for (const name of listed) delete headers[name];
  return headers;
}

/**
 * Applies X-Forwarded-For for a request arriving from `peerAddress`.
 * With `trustedHops` = 0 the incoming value is replaced by the peer address; otherwise the peer
 * address is appended to it. Returns the client address the proxy believes in: the entry
 * `trustedHops` places from the right of the resulting list (the peer itself when 0).
 */
export function applyForwardedFor(headers: HeaderMap, peerAddress: string, trustedHops: number): string {
  const incoming = headers['x-forwarded-for'];
  if (trustedHops === 0 || incoming === undefined) {
    headers['x-forwarded-for'] = peerAddress;
    return peerAddress;
  }
  const joined = Array.isArray(incoming) ? incoming.join(', ') : incoming;
  const value = `${joined}, ${peerAddress}`;
  headers['x-forwarded-for'] = value;
  const hops = value.split(',');
  const idx = Math.max(0, hops.length - 1 - trustedHops);
  return (hops[idx] as string).trim();
}

/** Strips an IPv4-mapped IPv6 prefix (`::ffff:127.0.0.1` → `127.0.0.1`). */
export function plainAddress(address: string | undefined): string {
  if (address === undefined) return 'unknown';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
