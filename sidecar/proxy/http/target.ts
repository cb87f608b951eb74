/**
 * Reads the request target (RFC 9112 §3.2): origin-form (`/p?q`, routed by `Host`),
 * absolute-form (`http://svc-b:8080/p?q`, sent by a client that uses the proxy as `HTTP_PROXY`),
 * and asterisk-form (`*`, OPTIONS only). The path and query are returned exactly as received
 * (no decoding, no normalisation), so the query is forwarded byte for byte.
 *
 * The routing host is lower-cased with its port removed (`Svc-B:80` → `svc-b`), and an IPv6
 * literal keeps its brackets (`[::1]:8080` → `[::1]`).
 */

/** A parsed request target; `authority` is the Host to send upstream (port kept). */
export interface RequestTarget {
  readonly host: string;
  readonly authority: string;
  readonly port: number | undefined;
  readonly path: string;
  readonly query: string;
}

/** Splits `host[:port]` into a lower-case host and a port (undefined when absent or invalid). */
export function splitAuthority(authority: string): { host: string; port: number | undefined } {
  let host = authority;
  let port: number | undefined;
  const close = authority.lastIndexOf(']');
  const colon = authority.lastIndexOf(':');
  if (colon > close && colon !== -1) {
    host = authority.slice(0, colon);
    const n = Number(authority.slice(colon + 1));
    port = Number.isInteger(n) && n > 0 && n < 65536 ? n : undefined;
  }
  return { host: host.toLowerCase(), port };
}

/**
 * Parses `url` (Node's `req.url`) with `hostHeader` as the fallback authority.
 * Returns undefined for a target the proxy cannot forward (e.g. a non-http absolute URI),
 * which the caller answers with 400.
 */
export function parseTarget(url: string, hostHeader: string | undefined): RequestTarget | undefined {
  let authority = hostHeader ?? '';
  let rest = url;
  if (url.charCodeAt(0) !== 47 /* '/' */ && url !== '*') {
    const lower = url.slice(0, 8).toLowerCase();
    const schemeEnd = lower.startsWith('http://') ? 7 : lower.startsWith('https://') ? 8 : -1;
    if (schemeEnd === -1) return undefined;
    let end = schemeEnd;
    while (end < url.length) {
      const c = url.charCodeAt(end);
      if (c === 47 || c === 63) break; // '/' or '?'
      end++;
    }
    authority = url.slice(schemeEnd, end);
    if (authority === '' || authority.includes('@')) return undefined;
    rest = end === url.length ? '/' : url.charCodeAt(end) === 63 ? `/${url.slice(end)}` : url.slice(end);
  }
  const q = rest.indexOf('?');
  const path = q === -1 ? rest : rest.slice(0, q);
  const query = q === -1 ? '' : rest.slice(q + 1);
  const { host, port } = splitAuthority(authority);
  return { host, authority, port, path, query };
}
