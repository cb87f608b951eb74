/**
 * `SnapshotCache`: what the discovery server knows about each connected proxy, keyed by proxy id,
 * kept apart from the gRPC transport (go-control-plane's SnapshotCache idea): the last snapshot
 * computed for it, the last one sent (version, nonce, config hash, send time), the last ACKed
 * version, the last NACK, and the newest store revision the proxy is known to be in sync with.
 *
 * Invariants:
 * - "Changed" means the config's stable hash differs from the last *sent* config's hash, never a
 *   version comparison: a new revision that leaves a proxy's config as it was is not pushed, and
 *   a NACKed config is not sent again (it is the last sent) until the config changes.
 * - Only the latest send counts: an ACK or NACK whose nonce is not the outstanding one is stale
 *   and ignored.
 * - A proxy is in sync when its last send was ACKed. `syncedRevision` then advances on the ACK
 *   (to the ACKed version, or a newer revision recorded as unchanged while the ACK was pending)
 *   and on `markUnchanged(revision)`; never while a send is outstanding or after a NACK.
 */
import { createHash } from 'node:crypto';
import type { ProxyConfig } from '../../sidecar/proxy/config/model.ts';
import type { ProxySnapshot } from '../translate/types.ts';
import type { NackRecord } from './status.ts';

/** A send awaiting its ACK/NACK. */
export interface SentSnapshot {
  readonly version: string;
  readonly nonce: string;
  readonly configHash: string;
  /** `performance.now()` at send, milliseconds. */
  readonly sentAtMs: number;
}

/** Read-only view of one proxy's cache entry. */
export interface CacheEntry {
  readonly snapshot: ProxySnapshot | undefined;
  readonly configHash: string;
  /** The last snapshot sent, or undefined before the first send. */
  readonly sent: SentSnapshot | undefined;
  /** True while the last send awaits its ACK/NACK. */
  readonly outstanding: boolean;
  readonly ackedVersion: string;
  readonly syncedRevision: number;
  readonly lastNack: NackRecord | undefined;
}

/** What `update` found: the config differs from the last sent one, is the same, or is absent. */
export type UpdateResult = 'changed' | 'unchanged' | 'none';

/** The outcome of an ACK: whether it answered the outstanding send, and that send. */
export interface AckResult {
  readonly accepted: boolean;
  readonly sent: SentSnapshot | undefined;
}

interface MutableEntry {
  snapshot: ProxySnapshot | undefined;
  configHash: string;
  sent: SentSnapshot | undefined;
  outstanding: boolean;
  acked: boolean;
  ackedVersion: string;
  syncedRevision: number;
  pendingSync: number;
  lastNack: NackRecord | undefined;
}

function stable(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stable);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = stable(v);
    }
    return out;
  }
  return value;
}

/** A stable hash of `config`: sha256 (hex) of its JSON with object keys sorted; lists keep order. */
export function configHash(config: ProxyConfig): string {
  return createHash('sha256')
    .update(JSON.stringify(stable(config)))
    .digest('hex');
}

export class SnapshotCache {
  readonly #entries = new Map<string, MutableEntry>();

  /**
   * Starts a fresh entry for `proxyId` (replacing any), for a proxy that says it serves
   * `servingVersion` ('' when none); that version is reported as ACKed until a real ACK.
   */
  open(proxyId: string, servingVersion: string): void {
    this.#entries.set(proxyId, {
      snapshot: undefined,
      configHash: '',
      sent: undefined,
      outstanding: false,
      acked: false,
      ackedVersion: servingVersion,
      syncedRevision: 0,
      pendingSync: 0,
      lastNack: undefined,
    });
  }

  /** Forgets `proxyId`. */
  delete(proxyId: string): void {
    this.#entries.delete(proxyId);
  }

  has(proxyId: string): boolean {
    return this.#entries.has(proxyId);
  }

  /** The entry of `proxyId`, or undefined when it has none. */
  get(proxyId: string): CacheEntry | undefined {
    return this.#entries.get(proxyId);
  }

  /**
   * Records the snapshot just computed for `proxyId` (undefined: none could be computed) and
   * says whether it must be pushed ('changed'). Throws when `proxyId` has no entry.
   */
  update(proxyId: string, snapshot: ProxySnapshot | undefined): UpdateResult {
    const e = this.#entry(proxyId);
    if (snapshot === undefined) return 'none';
    e.snapshot = snapshot;
    e.configHash = configHash(snapshot.config);
    return e.sent !== undefined && e.sent.configHash === e.configHash ? 'unchanged' : 'changed';
  }

  /** Records that the current snapshot of `proxyId` was sent with `nonce` at `sentAtMs`. */
  recordSent(proxyId: string, nonce: string, sentAtMs: number): SentSnapshot {
    const e = this.#entry(proxyId);
    if (e.snapshot === undefined) throw new Error(`no snapshot computed for proxy ${proxyId}`);
    e.sent = { version: e.snapshot.version, nonce, configHash: e.configHash, sentAtMs };
    e.outstanding = true;
    e.acked = false;
    e.pendingSync = 0;
    return e.sent;
  }

  /** Records an ACK; only the outstanding nonce is accepted (the proxy is then in sync). */
  recordAck(proxyId: string, version: string, nonce: string): AckResult {
    const e = this.#entry(proxyId);
    if (!e.outstanding || e.sent?.nonce !== nonce) return { accepted: false, sent: e.sent };
    e.outstanding = false;
    e.acked = true;
    e.ackedVersion = version;
    e.syncedRevision = Math.max(e.syncedRevision, Number(version) || 0, e.pendingSync);
    e.pendingSync = 0;
    return { accepted: true, sent: e.sent };
  }

  /** Records a NACK of the outstanding send; returns false (nothing recorded) when stale. */
  recordNack(proxyId: string, version: string, nonce: string, reason: string, at: Date): boolean {
    const e = this.#entry(proxyId);
    if (!e.outstanding || e.sent?.nonce !== nonce) return false;
    e.outstanding = false;
    e.acked = false;
    e.pendingSync = 0;
    e.lastNack = { version, reason, at: at.toISOString() };
    return true;
  }

  /**
   * Records that a recomputation at `revision` left the config of `proxyId` as last sent.
   * Returns true when `syncedRevision` advanced (the proxy had ACKed the last send); while an
   * ACK is pending the revision is remembered for it; after a NACK nothing changes.
   */
  markUnchanged(proxyId: string, revision: number): boolean {
    const e = this.#entry(proxyId);
    if (e.outstanding) {
      e.pendingSync = Math.max(e.pendingSync, revision);
      return false;
    }
    if (!e.acked || revision <= e.syncedRevision) return false;
    e.syncedRevision = revision;
    return true;
  }

  #entry(proxyId: string): MutableEntry {
    const e = this.#entries.get(proxyId);
    if (e === undefined) throw new Error(`no snapshot cache entry for proxy ${proxyId}`);
    return e;
  }
}
