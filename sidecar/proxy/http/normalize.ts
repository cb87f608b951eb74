/**
 * Path normalization for authorization decisions: the path a policy is matched against, so that
 * `/a/../admin`, `/%2e%2e/admin` and `//admin` cannot slip past a rule written for `/admin`
 * (Istio's and Envoy's `normalize_path` + `merge_slashes`).
 *
 * Steps, in order:
 * 1. Percent-encoding normalization (RFC 3986 §6.2.2.1, §6.2.2.2): a triplet encoding an
 *    unreserved character (`A-Z a-z 0-9 - . _ ~`, §2.3) is decoded; every other valid triplet is
 *    kept with its hex digits upper-cased (`%2f` → `%2F`). An encoded `/` therefore stays `%2F`
 *    and is never a segment separator. A `%` not followed by two hex digits is encoded as `%25`,
 *    so that a decoded character never forms a new triplet with a preceding `%` (`%%34%31`
 *    would otherwise give `%41`, and `A` on a second pass): normalizing is idempotent, and no
 *    double-decoding trick gets past a rule.
 * 2. Runs of `/` collapse to one (`//admin` → `/admin`), before dot segments are resolved, as
 *    nginx (`merge_slashes`), Tomcat and Go's `path.Clean` do: `/a//../b` is `/b`.
 * 3. Dot segments are removed with RFC 3986 §5.2.4 `remove_dot_segments` (`/a/./b/../c` →
 *    `/a/c`; `..` never climbs above the root: `/../a` → `/a`).
 *
 * Invariants: the result never contains `//`, nor a `.` or `..` segment; normalizing twice gives
 * the same result (idempotent); the query is not part of the input. Hot path: a path with no
 * `%`, no `//` and no `/.` is returned as is, without allocating.
 */

const SLASH = 47; // '/'
const DOT = 46; // '.'

/** The value of a hex digit, or -1. */
function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48; // 0-9
  if (c >= 65 && c <= 70) return c - 55; // A-F
  if (c >= 97 && c <= 102) return c - 87; // a-f
  return -1;
}

/** RFC 3986 §2.3 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
function isUnreserved(c: number): boolean {
  return (
    (c >= 65 && c <= 90) ||
    (c >= 97 && c <= 122) ||
    (c >= 48 && c <= 57) ||
    c === 45 ||
    c === 46 ||
    c === 95 ||
    c === 126
  );
}

const HEX_UPPER = '0123456789ABCDEF';

/** Step 1: decodes unreserved triplets, upper-cases the others' hex digits, encodes a lone `%`. */
export function normalizePercentEncoding(path: string): string {
  let i = path.indexOf('%');
  if (i === -1) return path;
  let out = '';
  let from = 0;
  for (; i !== -1; i = path.indexOf('%', i + 1)) {
    out += path.slice(from, i);
    const hi = i + 2 < path.length ? hexValue(path.charCodeAt(i + 1)) : -1;
    const lo = hi === -1 ? -1 : hexValue(path.charCodeAt(i + 2));
    if (lo === -1) {
      out += '%25';
      from = i + 1;
      continue;
    }
    const byte = hi * 16 + lo;
    out += isUnreserved(byte) ? String.fromCharCode(byte) : `%${HEX_UPPER[hi]}${HEX_UPPER[lo]}`;
    from = i + 3;
    i += 2;
  }
  return out + path.slice(from);
}

/** Step 2: collapses every run of `/` to one. */
export function mergeSlashes(path: string): string {
  if (path.indexOf('//') === -1) return path;
  let out = '';
  let prevSlash = false;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === SLASH && prevSlash) continue;
    prevSlash = c === SLASH;
    out += path[i];
  }
  return out;
}

/** True when `s` at `i` starts with `.` (one dot) followed by `/` or the end. */
function isDot(s: string, i: number): boolean {
  return s.charCodeAt(i) === DOT && (i + 1 === s.length || s.charCodeAt(i + 1) === SLASH);
}

/** True when `s` at `i` starts with `..` followed by `/` or the end. */
function isDotDot(s: string, i: number): boolean {
  return (
    s.charCodeAt(i) === DOT &&
    s.charCodeAt(i + 1) === DOT &&
    (i + 2 === s.length || s.charCodeAt(i + 2) === SLASH)
  );
}

/**
 * Step 3: RFC 3986 §5.2.4 `remove_dot_segments`, literally: the input buffer is `path` from `i`
 * on, the output buffer a stack of segments each with its leading `/` (when it had one).
 */
export function removeDotSegments(path: string): string {
  if (path.indexOf('.') === -1) return path;
  const out: string[] = [];
  let i = 0;
  const n = path.length;
  while (i < n) {
    // A. a leading "../" or "./" is removed.
    if (isDotDot(path, i) && i + 2 < n) {
      i += 3;
      continue;
    }
    if (isDot(path, i) && i + 1 < n) {
      i += 2;
      continue;
    }
    if (path.charCodeAt(i) === SLASH) {
      // B. "/./" or "/." at the end: replaced by "/".
      if (isDot(path, i + 1)) {
        if (i + 2 === n) {
          out.push('/');
          break;
        }
        i += 2; // the input now starts with the "/" that followed "."
        continue;
      }
      // C. "/../" or "/.." at the end: replaced by "/", and the last output segment removed.
      if (isDotDot(path, i + 1)) {
        out.pop();
        if (i + 3 === n) {
          out.push('/');
          break;
        }
        i += 3;
        continue;
      }
    } else if (isDot(path, i) || isDotDot(path, i)) {
      // D. the input is only "." or "..": removed.
      break;
    }
    // E. move the first segment (with its leading "/", if any) to the output.
    let end = path.indexOf('/', i + 1);
    if (end === -1) end = n;
    out.push(path.slice(i, end));
    i = end;
  }
  return out.join('');
}

/** Fast check: could any step change `path`? */
function mayNeedNormalizing(path: string): boolean {
  return (
    path.indexOf('%') !== -1 || path.indexOf('//') !== -1 || path.indexOf('/.') !== -1 || path.startsWith('.')
  );
}

/**
 * The normalized form of a request path (no query): percent-encoding normalized, slashes merged,
 * dot segments removed (see the module comment). `%2F` stays encoded and is not a separator.
 */
export function normalizePath(path: string): string {
  if (!mayNeedNormalizing(path)) return path;
  return removeDotSegments(mergeSlashes(normalizePercentEncoding(path)));
}
