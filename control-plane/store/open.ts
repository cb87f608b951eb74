/**
 * Picks the store backend: etcd when endpoints are given (production, shared by several
 * control-plane replicas), else the embedded store in `dataDir` (one machine, zero setup).
 * The etcd client (gRPC) is loaded only when etcd is used.
 */
import { openEmbeddedStore } from './embedded.ts';
import type { StoreLogger } from './logger.ts';
import type { Store } from './types.ts';

export interface OpenStoreOptions {
  /** etcd client URLs (`http://host:2379`); non-empty selects the etcd backend. */
  readonly etcd?: readonly string[];
  /** The embedded store's data dir (used when `etcd` is absent or empty). */
  readonly dataDir: string;
  /** Where background warnings go (a pino logger fits); default process warnings. */
  readonly logger?: StoreLogger;
}

/** Opens the selected backend. Throws when etcd does not answer or `dataDir` is locked/corrupt. */
export async function openStore(options: OpenStoreOptions): Promise<Store> {
  const logger = options.logger === undefined ? {} : { logger: options.logger };
  if (options.etcd !== undefined && options.etcd.length > 0) {
    const { openEtcdStore } = await import('./etcd.ts');
    return openEtcdStore(options.etcd, logger);
  }
  return openEmbeddedStore(options.dataDir, logger);
}
