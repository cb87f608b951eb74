/**
 * Proxy status as the discovery server records it in the store, so that any control-plane
 * replica can answer `weft proxy-status` and `weft apply --wait` from the store alone.
 *
 * One JSON `ProxyStatusRecord` per connected proxy under `proxyKey(proxyId)`, attached to the
 * proxy's stream lease: it disappears when the stream ends or the replica dies (lease expiry).
 * Versions are store revisions as decimal strings ('' when none); `syncedRevision` is the newest
 * store revision the proxy is known to run the config of (0 when not yet in sync): set when an
 * ACK arrives, and when a recomputation at a newer revision found the proxy's config unchanged.
 * Times are ISO 8601 UTC strings.
 */
import type { ProxyIdentity } from '../translate/types.ts';

/** The last snapshot a proxy rejected. */
export interface NackRecord {
  readonly version: string;
  /** The proxy's reason (resource, field, reason), as sent in its NACK. */
  readonly reason: string;
  /** When the NACK arrived (ISO 8601). */
  readonly at: string;
}

/** The stored status of one connected proxy (JSON under `proxyKey(proxyId)`). */
export interface ProxyStatusRecord {
  readonly proxyId: string;
  readonly identity: ProxyIdentity;
  /** The control-plane replica holding the proxy's stream. */
  readonly replicaId: string;
  readonly connected: true;
  /** Version of the last snapshot sent ('' before the first). */
  readonly sentVersion: string;
  /** Version of the last snapshot ACKed ('' before the first; the Hello's version until then). */
  readonly ackedVersion: string;
  /** Newest store revision whose config the proxy runs (0: not known to be in sync). */
  readonly syncedRevision: number;
  readonly lastNack?: NackRecord;
  /** When the stream said Hello (ISO 8601). */
  readonly connectedAt: string;
}

/** The in-memory status of a proxy connected to this replica: the record plus send details. */
export interface ProxyStatus extends ProxyStatusRecord {
  /** Version of the last snapshot computed for the proxy ('' when none could be computed). */
  readonly computedVersion: string;
  /** Nonce of the last snapshot sent, awaiting its ACK/NACK ('' when none is outstanding). */
  readonly pendingNonce: string;
}

/**
 * Parses a stored status value. Throws a plain Error naming `key` when the value is not a
 * status record (bad JSON or missing fields).
 */
export function parseProxyStatus(key: string, value: string): ProxyStatusRecord {
  let doc: unknown;
  try {
    doc = JSON.parse(value);
  } catch (err) {
    throw new Error(`${key}: not JSON: ${(err as Error).message}`);
  }
  const r = doc as Partial<ProxyStatusRecord> | null;
  if (
    r === null ||
    typeof r !== 'object' ||
    typeof r.proxyId !== 'string' ||
    typeof r.replicaId !== 'string' ||
    typeof r.sentVersion !== 'string' ||
    typeof r.ackedVersion !== 'string' ||
    typeof r.syncedRevision !== 'number' ||
    typeof r.identity !== 'object'
  ) {
    throw new Error(`${key}: not a proxy status record`);
  }
  return r as ProxyStatusRecord;
}
