/**
 * Snapshots as the admin API shows them: a gateway's server certificate keys (`certificates[]
 * .privateKeyPem`, from store Secrets) replaced by `<redacted>`, so `weft proxy-config` never
 * prints a private key. The proxy itself still gets the real snapshot over the config stream.
 */
import type { ProxySnapshot } from './types.ts';

export function redactSnapshotKeys(snapshot: ProxySnapshot): ProxySnapshot {
  const certificates = snapshot.config.certificates;
  if (certificates === undefined || !certificates.some((c) => c.privateKeyPem !== undefined)) return snapshot;
  return {
    ...snapshot,
    config: {
      ...snapshot.config,
      certificates: certificates.map((c) =>
        c.privateKeyPem === undefined ? c : { ...c, privateKeyPem: '<redacted>' },
      ),
    },
  };
}
