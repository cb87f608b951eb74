/**
 * Name and value formats shared by the kinds: Kubernetes object names (DNS-1123), label keys and
 * values, HTTP header names (RFC 9110 tokens), CIDRs, trust domains. Each is a `Schema<string>`
 * whose error names the expected form.
 *
 * Spec: Kubernetes `apimachinery/pkg/util/validation` (IsDNS1123Label, IsDNS1123Subdomain,
 * IsQualifiedName, IsValidLabelValue); RFC 9110 §5.1 (field names); RFC 4632 (CIDR).
 */
import { isIP } from 'node:net';
import { type Schema, str } from './schema.ts';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
/** RFC 9110 token, as Gateway API's HeaderName pattern. */
export const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/;

export function isDnsLabel(s: string): boolean {
  return s.length <= 63 && DNS_LABEL.test(s);
}
export function isDnsSubdomain(s: string): boolean {
  return s.length <= 253 && DNS_SUBDOMAIN.test(s) && s.split('.').every((l) => l.length <= 63);
}

/** A DNS-1123 label: lower-case alphanumerics and '-', at most 63 characters (namespaces, port names). */
export const dnsLabel: Schema<string> = str({
  describe:
    "a DNS-1123 label (lower-case letters, digits and '-', starting and ending alphanumeric, at most 63 characters)",
  rule: (s) =>
    isDnsLabel(s)
      ? undefined
      : "must be a DNS-1123 label (lower-case letters, digits and '-', at most 63 characters)",
});

/** A DNS-1123 subdomain: dot-separated labels, at most 253 characters (object names, trust domains). */
export const dnsSubdomain: Schema<string> = str({
  describe: 'a DNS-1123 subdomain',
  rule: (s) =>
    isDnsSubdomain(s)
      ? undefined
      : "must be a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', starting and ending alphanumeric, at most 253 characters)",
});

/** A Kubernetes qualified name (`app`, `weft.dev/inject`): label and annotation keys. */
export const qualifiedName: Schema<string> = str({
  describe: 'a qualified name',
  rule: (s) => {
    const slash = s.indexOf('/');
    const [prefix, name] = slash < 0 ? [undefined, s] : [s.slice(0, slash), s.slice(slash + 1)];
    if (prefix !== undefined && !isDnsSubdomain(prefix))
      return 'prefix before "/" must be a DNS-1123 subdomain';
    if (name.length === 0 || name.length > 63 || !QUALIFIED_NAME.test(name)) {
      return "must be a qualified name ([prefix/]name, name at most 63 characters of letters, digits, '-', '_', '.', starting and ending alphanumeric)";
    }
    return undefined;
  },
});

/** A label value: at most 63 characters, empty allowed. */
export const labelValue: Schema<string> = str({
  describe: 'a label value',
  rule: (s) =>
    s.length <= 63 && LABEL_VALUE.test(s)
      ? undefined
      : "must be a label value (at most 63 letters, digits, '-', '_', '.', starting and ending alphanumeric)",
});

/** An HTTP header name (RFC 9110 token), compared case-insensitively. */
export const headerName: Schema<string> = str({
  describe: 'an HTTP header name (RFC 9110 token)',
  minLength: 1,
  maxLength: 256,
  pattern: HEADER_NAME,
});

/** An IPv4 or IPv6 CIDR (`10.0.0.0/8`, `2001:db8::/32`); a bare address means a single host. */
export const cidr: Schema<string> = str({
  describe: 'a CIDR such as 10.0.0.0/8 or 2001:db8::/32',
  rule: (s) => {
    const [addr = '', prefix, extra] = s.split('/');
    const family = isIP(addr);
    if (family === 0 || extra !== undefined) return 'must be a CIDR such as 10.0.0.0/8 or 2001:db8::/32';
    if (prefix === undefined) return undefined;
    const bits = family === 4 ? 32 : 128;
    if (!/^[0-9]{1,3}$/.test(prefix) || Number(prefix) > bits) return `prefix length must be 0..${bits}`;
    return undefined;
  },
});

/** A regular expression in JavaScript syntax (Weft's dialect for RegularExpression matches). */
export function regexError(source: string): string | undefined {
  try {
    new RegExp(source);
    return undefined;
  } catch (err) {
    return `invalid regular expression: ${(err as Error).message}`;
  }
}
