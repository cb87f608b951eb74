/**
 * Bearer-token authentication for the admin API (RFC 6750 header form only).
 *
 * The comparison is constant-time: both sides are hashed with SHA-256 first, so the compared
 * buffers always have the same length and the time taken says nothing about the expected token.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/** A checker for `Authorization: Bearer <token>` against the expected token. */
export function bearerChecker(expected: string): (headers: IncomingHttpHeaders) => boolean {
  if (expected.length === 0) throw new Error('admin API token must not be empty');
  const want = digest(expected);
  return (headers) => {
    const header = headers.authorization;
    if (typeof header !== 'string') return false;
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    if (!m?.[1]) return false;
    return timingSafeEqual(digest(m[1]), want);
  };
}
