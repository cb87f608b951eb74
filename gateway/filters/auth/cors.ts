/**
 * CORS at the edge (Fetch standard §3.2, "CORS protocol"): a preflight (`OPTIONS` with `Origin`
 * and `Access-Control-Request-Method`) is answered here, 204 with the `Access-Control-Allow-*`
 * headers when origin, method and every requested header are allowed, else 403 without them (the
 * browser then refuses the real request). Any other request from an allowed origin gets
 * `Access-Control-Allow-Origin` (and `-Credentials`, `-Expose-Headers`) on its response.
 *
 * Origins: exact (`https://app.example.com`, compared case-insensitively), a wildcard
 * subdomain (`https://*.example.com`: one or more labels, same scheme and port) or `*`. With
 * `allowCredentials` the origin is echoed, never `*` (the Fetch standard forbids `*` then), and
 * `*` in methods/headers echoes what was requested. Responses vary on `Origin`.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Cors } from '../../../sidecar/proxy/config/types.ts';
import { TOKEN } from '../../../sidecar/proxy/router/match.ts';
import { EdgeAuthConfigError } from './config-error.ts';

interface OriginPattern {
  /** Exact origin (lower-case), or '' for a wildcard. */
  readonly exact: string;
  /** Wildcard: `https://` and `.example.com` (plus port), lower-case. */
  readonly scheme: string;
  readonly suffix: string;
}

export interface CompiledCors {
  readonly anyOrigin: boolean;
  readonly origins: readonly OriginPattern[];
  /** Upper-case methods, or undefined for `*`. */
  readonly methods: ReadonlySet<string> | undefined;
  readonly methodsValue: string;
  /** Lower-case header names, or undefined for `*`. */
  readonly headers: ReadonlySet<string> | undefined;
  readonly headersValue: string;
  readonly exposeValue: string;
  readonly maxAge: string;
  readonly credentials: boolean;
}

const ORIGIN = /^(https?):\/\/(\*\.)?([a-z0-9.-]+)(:[0-9]{1,5})?$/;
/** CORS-safelisted methods (Fetch standard): always allowed. */
const SAFELISTED = new Set(['GET', 'HEAD', 'POST']);

/** Compiles a route's or listener's CORS config; `field` names it (`auth.cors`). */
export function compileCors(c: Cors, field: string): CompiledCors {
  let anyOrigin = false;
  const origins: OriginPattern[] = [];
  (c.allowOrigins ?? []).forEach((o, i) => {
    if (o === '*') {
      anyOrigin = true;
      return;
    }
    const m = ORIGIN.exec(o.toLowerCase());
    if (m === null) {
      throw new EdgeAuthConfigError(
        `${field}.allowOrigins[${i}]`,
        `must be an origin such as https://app.example.com or https://*.example.com, or * (got ${JSON.stringify(o)})`,
      );
    }
    if (m[2] === undefined) origins.push({ exact: o.toLowerCase(), scheme: '', suffix: '' });
    else origins.push({ exact: '', scheme: `${m[1]}://`, suffix: `.${m[3]}${m[4] ?? ''}` });
  });
  const methods = c.allowMethods ?? [];
  methods.forEach((m, i) => {
    if (m !== '*' && !TOKEN.test(m)) {
      throw new EdgeAuthConfigError(
        `${field}.allowMethods[${i}]`,
        `must be a method or * (got ${JSON.stringify(m)})`,
      );
    }
  });
  const headerList = c.allowHeaders ?? [];
  const names = (list: readonly string[], f: string, star: boolean) =>
    list.forEach((h, i) => {
      if (!(star && h === '*') && !TOKEN.test(h)) {
        throw new EdgeAuthConfigError(
          `${field}.${f}[${i}]`,
          `must be a header name (got ${JSON.stringify(h)})`,
        );
      }
    });
  names(headerList, 'allowHeaders', true);
  names(c.exposeHeaders ?? [], 'exposeHeaders', false);
  const anyMethod = methods.includes('*');
  const anyHeader = headerList.includes('*');
  return {
    anyOrigin,
    origins,
    methods: anyMethod ? undefined : new Set(methods.map((m) => m.toUpperCase())),
    methodsValue: methods.filter((m) => m !== '*').join(', '),
    headers: anyHeader ? undefined : new Set(headerList.map((h) => h.toLowerCase())),
    headersValue: headerList.filter((h) => h !== '*').join(', '),
    exposeValue: (c.exposeHeaders ?? []).join(', '),
    maxAge: c.maxAgeSeconds ? String(c.maxAgeSeconds) : '',
    credentials: c.allowCredentials === true,
  };
}

/** Whether `origin` (as sent) is allowed. */
export function originAllowed(cors: CompiledCors, origin: string): boolean {
  if (cors.anyOrigin) return true;
  const o = origin.toLowerCase();
  for (const p of cors.origins) {
    if (p.exact !== '') {
      if (p.exact === o) return true;
    } else if (
      o.startsWith(p.scheme) &&
      o.endsWith(p.suffix) &&
      o.length > p.scheme.length + p.suffix.length
    ) {
      const label = o.slice(p.scheme.length, o.length - p.suffix.length);
      if (!label.includes(':') && !label.includes('/')) return true;
    }
  }
  return false;
}

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** The request is a CORS preflight (Fetch standard: OPTIONS with Origin and ACRM). */
export function isPreflight(method: string, headers: IncomingHttpHeaders): boolean {
  return (
    method === 'OPTIONS' &&
    headers.origin !== undefined &&
    headers['access-control-request-method'] !== undefined
  );
}

/** The headers for an allowed origin on any response (actual request or preflight). */
function originHeaders(cors: CompiledCors, origin: string): Record<string, string> {
  const out: Record<string, string> = {
    'access-control-allow-origin': cors.anyOrigin && !cors.credentials ? '*' : origin,
    vary: 'Origin',
  };
  if (cors.credentials) out['access-control-allow-credentials'] = 'true';
  return out;
}

/**
 * Answers a preflight: status 204 and headers when everything requested is allowed, else 403
 * with no CORS header.
 */
export function preflight(
  cors: CompiledCors,
  headers: IncomingHttpHeaders,
): { readonly status: number; readonly headers: Record<string, string> } {
  const origin = one(headers.origin) ?? '';
  const method = one(headers['access-control-request-method']) ?? '';
  if (!originAllowed(cors, origin)) return { status: 403, headers: { vary: 'Origin' } };
  if (cors.methods !== undefined && !SAFELISTED.has(method) && !cors.methods.has(method.toUpperCase())) {
    return { status: 403, headers: { vary: 'Origin' } };
  }
  const requested = (one(headers['access-control-request-headers']) ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h !== '');
  if (cors.headers !== undefined) {
    for (const h of requested) if (!cors.headers.has(h)) return { status: 403, headers: { vary: 'Origin' } };
  }
  const out = originHeaders(cors, origin);
  out['access-control-allow-methods'] = cors.methods === undefined ? method : cors.methodsValue || method;
  const allowHeaders = cors.headers === undefined ? requested.join(', ') : cors.headersValue;
  if (allowHeaders !== '') out['access-control-allow-headers'] = allowHeaders;
  if (cors.maxAge !== '') out['access-control-max-age'] = cors.maxAge;
  return { status: 204, headers: out };
}

/** The headers to add to the response of an actual request from `origin`; undefined when not allowed. */
export function responseHeaders(cors: CompiledCors, origin: string): Record<string, string> | undefined {
  if (!originAllowed(cors, origin)) return undefined;
  const out = originHeaders(cors, origin);
  if (cors.exposeValue !== '') out['access-control-expose-headers'] = cors.exposeValue;
  return out;
}
