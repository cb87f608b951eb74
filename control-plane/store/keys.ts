/**
 * Where the control plane keeps things in the store (one prefix per kind of record).
 *
 *   /weft/resources/<Kind>/<namespace>/<name>   user resources (JSON `Resource`), no lease
 *   /weft/endpoints/<namespace>/<proxyId>       endpoint registrations (JSON), under the proxy's lease
 *   /weft/proxies/<proxyId>                     proxy status (JSON `ProxyStatusRecord`), under the proxy's lease
 *   /weft/system/...                            control-plane internals (e.g. the CA, later)
 */
export const ROOT = '/weft/';
export const RESOURCES = '/weft/resources/';
export const ENDPOINTS = '/weft/endpoints/';
export const PROXIES = '/weft/proxies/';

export function resourceKey(kind: string, namespace: string, name: string): string {
  return `${RESOURCES}${kind}/${namespace}/${name}`;
}

export function endpointKey(namespace: string, proxyId: string): string {
  return `${ENDPOINTS}${namespace}/${proxyId}`;
}

export function proxyKey(proxyId: string): string {
  return `${PROXIES}${proxyId}`;
}
