/**
 * Where a credential is read from (config `CredentialSource`): a request header (with an optional
 * value prefix such as `Bearer `, compared case-insensitively as RFC 9110 §11.1 says for the
 * scheme), a query parameter, or a cookie (RFC 6265 §5.4 `name=value` pairs). The first source
 * with a non-empty value wins.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { CredentialSource } from '../../../sidecar/proxy/config/types.ts';
import { TOKEN } from '../../../sidecar/proxy/router/match.ts';
import { EdgeAuthConfigError } from './config-error.ts';

/** One compiled source; exactly one of the three names is set. */
export interface CompiledSource {
  /** Lower-case header name, or ''. */
  readonly header: string;
  /** Lower-case prefix to strip from the header value ('' for none). */
  readonly prefix: string;
  readonly queryParam: string;
  readonly cookie: string;
}

/** Compiles `sources` (`field` names the list), or `fallback` when the list is empty. */
export function compileSources(
  sources: readonly CredentialSource[] | undefined,
  field: string,
  fallback: CompiledSource,
): readonly CompiledSource[] {
  if (sources === undefined || sources.length === 0) return [fallback];
  return sources.map((s, i) => {
    const at = `${field}[${i}]`;
    const set = [s.header, s.queryParam, s.cookie].filter((v) => v !== undefined && v !== '');
    if (set.length !== 1) throw new EdgeAuthConfigError(at, 'set exactly one of header, queryParam, cookie');
    if (s.header && !TOKEN.test(s.header)) {
      throw new EdgeAuthConfigError(
        `${at}.header`,
        `must be a header name (got ${JSON.stringify(s.header)})`,
      );
    }
    return {
      header: (s.header ?? '').toLowerCase(),
      prefix: s.header ? (s.valuePrefix ?? '').toLowerCase() : '',
      queryParam: s.queryParam ?? '',
      cookie: s.cookie ?? '',
    };
  });
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function fromCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq !== -1 && pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim();
  }
  return undefined;
}

/** The credential found, with the source it came from; `undefined` when none has a value. */
export function extractCredential(
  sources: readonly CompiledSource[],
  headers: IncomingHttpHeaders,
  query: string,
): { readonly value: string; readonly source: CompiledSource } | undefined {
  for (const source of sources) {
    let value: string | undefined;
    if (source.header !== '') {
      const raw = first(headers[source.header]);
      if (raw === undefined) continue;
      if (source.prefix !== '') {
        if (
          raw.length <= source.prefix.length ||
          raw.slice(0, source.prefix.length).toLowerCase() !== source.prefix
        )
          continue;
        value = raw.slice(source.prefix.length).trim();
      } else {
        value = raw.trim();
      }
    } else if (source.queryParam !== '') {
      if (query === '') continue;
      value = new URLSearchParams(query).get(source.queryParam) ?? undefined;
    } else {
      value = fromCookie(first(headers.cookie), source.cookie);
    }
    if (value !== undefined && value !== '') return { value, source };
  }
  return undefined;
}
