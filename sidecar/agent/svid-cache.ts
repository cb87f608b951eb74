/**
 * Keeps the workload's current SVID (certificate chain and key) on local disk, mode 0600, beside
 * the last ACKed snapshot, so a sidecar restarted while the control plane is unreachable can
 * serve mTLS on its last good config until the certificate expires. The key is the workload's
 * own (made locally); the CA's key never leaves the control plane.
 *
 * Writes are atomic (temp file, fsync, rename); a missing, corrupt or expired file reads as
 * undefined.
 */
import { open, readFile, rename } from 'node:fs/promises';
import type { WorkloadCertificate } from './identity.ts';

/** Writes `svid` to `path` atomically with mode 0600. */
export async function writeSvid(path: string, svid: WorkloadCertificate): Promise<void> {
  const temp = `${path}.${process.pid}.tmp`;
  const file = await open(temp, 'w', 0o600);
  try {
    await file.writeFile(JSON.stringify(svid));
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temp, path);
}

/** The cached SVID when it exists and is valid for at least `minValidMs` more (default 30 s). */
export async function loadSvid(path: string, minValidMs = 30_000): Promise<WorkloadCertificate | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const svid = JSON.parse(text) as WorkloadCertificate;
    const complete =
      typeof svid.certChainPem === 'string' &&
      typeof svid.keyPem === 'string' &&
      typeof svid.spiffeId === 'string' &&
      Array.isArray(svid.trustBundlePem) &&
      typeof svid.expiresAtMs === 'number';
    return complete && svid.expiresAtMs > Date.now() + minValidMs ? svid : undefined;
  } catch {
    return undefined;
  }
}
