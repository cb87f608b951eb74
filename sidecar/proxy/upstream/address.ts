/**
 * Endpoint addresses: validation and the two canonical spellings the upstream side uses, the endpoint
 * key (`127.0.0.1:8080`, `[::1]:8080`, `api.internal:80`) and the undici origin (`http://` or, for
 * mTLS, `https://` + key).
 *
 * Accepted addresses: an IPv4 literal (dotted quad, no leading zeros), an IPv6 literal (bare or in
 * brackets, canonicalised to its compressed lower-case form; no zone index), or a DNS hostname
 * (RFC 1123 labels, at most 253 characters, lower-cased, last label not all digits).
 * Ports are integers in 1–65535. Pure functions; nothing here does I/O.
 */
import { isIPv4, isIPv6 } from 'node:net';

const HOST_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * The canonical form of `address`: IPv4 unchanged, IPv6 compressed and lower-cased without brackets,
 * hostnames lower-cased without a trailing dot. Throws an `Error` describing the problem otherwise.
 */
export function normalizeAddress(address: string): string {
  if (typeof address !== 'string' || address.length === 0) throw new Error('address is empty');
  if (isIPv4(address)) return address;
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  if (isIPv6(bare)) {
    if (bare.includes('%')) throw new Error(`address ${address}: IPv6 zone indexes are not supported`);
    return new URL(`http://[${bare}]/`).hostname.slice(1, -1);
  }
  const host = (address.endsWith('.') ? address.slice(0, -1) : address).toLowerCase();
  const labels = host.split('.');
  if (host.length > 253 || !labels.every((l) => HOST_LABEL.test(l)) || /^\d+$/.test(labels.at(-1) ?? '')) {
    throw new Error(`address ${JSON.stringify(address)} is not an IP address or a DNS hostname`);
  }
  return host;
}

/** Throws an `Error` unless `port` is an integer in 1–65535. */
export function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`port ${String(port)} is not an integer in 1-65535`);
  }
}

/**
 * `host:port` with IPv6 in brackets, from an already normalised address, e.g. `[::1]:8080`.
 * This is the endpoint's identity within a cluster.
 */
export function endpointKey(normalizedAddress: string, port: number): string {
  return normalizedAddress.includes(':') ? `[${normalizedAddress}]:${port}` : `${normalizedAddress}:${port}`;
}

/**
 * Origin for undici from an already normalised address, e.g. `http://[::1]:8080`; `https` for an
 * endpoint reached over mTLS (upstream/tls.ts).
 */
export function endpointOrigin(
  normalizedAddress: string,
  port: number,
  scheme: 'http' | 'https' = 'http',
): string {
  return `${scheme}://${endpointKey(normalizedAddress, port)}`;
}
