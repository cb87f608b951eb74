/**
 * The mesh trust bundle: the roots every peer certificate may chain to (several during a root
 * rotation) and the SPIFFE trust domain. Stored at `/weft/system/trust-bundle` as JSON
 * `{ trustDomain, rootsPem }`, the shape of `weft.v1.TrustBundle` (proto/weft/v1/config.proto), so
 * the translator can put it into snapshots as is; written to `<dataDir>/ca-bundle.pem` (mode 0644)
 * for proxies to bootstrap their trust in the control plane.
 *
 * Invariants: `rootsPem` is never empty in a stored bundle and holds each root once (normalized
 * PEM, one block per entry); the active root comes first.
 */
import { chmod, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { splitPem } from './pki.ts';

/** `weft.v1.TrustBundle` as stored and served. */
export interface TrustBundle {
  readonly trustDomain: string;
  readonly rootsPem: readonly string[];
}

/** File name of the bundle in the control plane's data directory. */
export const BUNDLE_FILE = 'ca-bundle.pem';

/**
 * Parses a stored trust bundle value; undefined when it is not a bundle (not JSON, no trust
 * domain, or no roots).
 */
export function parseTrustBundle(value: string): TrustBundle | undefined {
  try {
    const v = JSON.parse(value) as { trustDomain?: unknown; rootsPem?: unknown };
    if (typeof v.trustDomain !== 'string' || !Array.isArray(v.rootsPem)) return undefined;
    const rootsPem = v.rootsPem.filter((r): r is string => typeof r === 'string');
    if (rootsPem.length === 0) return undefined;
    return { trustDomain: v.trustDomain, rootsPem };
  } catch {
    return undefined;
  }
}

/** The bundle's roots as one PEM text (one block after another). */
export function bundlePem(bundle: Pick<TrustBundle, 'rootsPem'>): string {
  return bundle.rootsPem.map((r) => splitPem(r).join('')).join('');
}

/**
 * Writes the bundle's roots to `<dataDir>/ca-bundle.pem` atomically (temporary file, then rename)
 * with mode 0644; resolves with the path. Rejects on I/O errors.
 */
export async function writeBundleFile(
  dataDir: string,
  bundle: Pick<TrustBundle, 'rootsPem'>,
): Promise<string> {
  const path = join(dataDir, BUNDLE_FILE);
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, bundlePem(bundle), { mode: 0o644 });
  await chmod(tmp, 0o644);
  await rename(tmp, path);
  return path;
}
