/**
 * Where the control plane keeps things in the store (one prefix per kind of record).
 *
 *   /weft/resources/<Kind>/<namespace>/<name>   user resources (JSON `Resource`), no lease
 *   /weft/endpoints/<namespace>/<proxyId>       endpoint registrations (JSON), under the proxy's lease
 *   /weft/proxies/<proxyId>                     proxy status (JSON `ProxyStatusRecord`), under the proxy's lease
 *   /weft/system/...                            control-plane internals, no lease:
 *   /weft/system/ca                               the mesh CA (control-plane/ca/authority.ts)
 *   /weft/system/trust-bundle                     JSON `{ trustDomain, rootsPem }` (proto TrustBundle)
 *   /weft/system/tokens/<id>                      join tokens, secret hashed (control-plane/ca/tokens.ts)
 */
export const ROOT = '/weft/';
export const RESOURCES = '/weft/resources/';
export const ENDPOINTS = '/weft/endpoints/';
export const PROXIES = '/weft/proxies/';
export const SYSTEM = '/weft/system/';
export const CA_KEY = `${SYSTEM}ca`;
export const TRUST_BUNDLE_KEY = `${SYSTEM}trust-bundle`;
export const TOKENS = `${SYSTEM}tokens/`;

export function resourceKey(kind: string, namespace: string, name: string): string {
  return `${RESOURCES}${kind}/${namespace}/${name}`;
}

export function endpointKey(namespace: string, proxyId: string): string {
  return `${ENDPOINTS}${namespace}/${proxyId}`;
}

export function proxyKey(proxyId: string): string {
  return `${PROXIES}${proxyId}`;
}

/** A control-plane internal record, `/weft/system/<name>`. */
export function systemKey(name: string): string {
  return `${SYSTEM}${name}`;
}

/** A join token record, `/weft/system/tokens/<id>`. */
export function tokenKey(id: string): string {
  return `${TOKENS}${id}`;
}
