/**
 * The `Store` contract: a revisioned key-value store in etcd's model (etcd v3 API semantics),
 * implemented by the etcd backend and by the embedded file-backed backend, and checked by one
 * contract test suite against both.
 *
 * - Keys and values are strings (values are JSON documents by convention).
 * - Every successful write (one `txn`) increments the store revision by exactly one; every key
 *   records the revision that last modified it (`modRevision`). The revision is the config version
 *   everywhere in Weft (API responses, snapshots, ACKs, `weft proxy-status`).
 * - `txn` is all or nothing: either every operation applies (one new revision) or none does.
 * - A key written with a lease disappears when the lease expires or is revoked (a delete event).
 * - `watch(prefix, fromRevision)` delivers every change with revision >= fromRevision, in
 *   revision order, then live changes; events of one revision arrive together.
 * - As in etcd, a txn that changes nothing (empty, or only deletes of missing keys) does not
 *   create a revision; it resolves with the current one.
 * - One txn may name each key at most once (etcd rejects duplicate keys in a txn).
 */

export interface KeyValue {
  readonly key: string;
  readonly value: string;
  /** Revision of the last write to this key. */
  readonly modRevision: number;
  /** Revision at which the key was created. */
  readonly createRevision: number;
  /** Lease id the key is attached to, or undefined. */
  readonly lease: string | undefined;
}

export type TxnOp =
  | { readonly op: 'put'; readonly key: string; readonly value: string; readonly lease?: string }
  | { readonly op: 'delete'; readonly key: string };

/**
 * A precondition on a key (etcd compare): `modRevision` equal to the given value
 * (0 means "the key does not exist").
 */
export interface TxnCondition {
  readonly key: string;
  readonly modRevision: number;
}

export interface WatchEvent {
  readonly type: 'put' | 'delete';
  readonly key: string;
  /** The new value for put; the last value for delete when known, else ''. */
  readonly value: string;
  readonly modRevision: number;
}

export interface Watcher {
  close(): Promise<void>;
}

export interface Lease {
  readonly id: string;
  readonly ttlSeconds: number;
  /** Revokes the lease now: its keys are deleted. */
  revoke(): Promise<void>;
  /**
   * Registers `listener` for the loss of this lease without `revoke` (etcd: keepalives failed or
   * the lease expired; its keys are gone or going). The owner re-grants and re-registers.
   * Optional; an in-process lease is never lost.
   */
  onLost?(listener: (error: Error) => void): void;
}

/** Thrown by `txn` when a condition does not hold; nothing was written. */
export class TxnConflictError extends Error {
  readonly key: string;
  constructor(key: string) {
    super(`transaction condition failed on ${key}`);
    this.name = 'TxnConflictError';
    this.key = key;
  }
}

/** Thrown by `watch` when `fromRevision` is older than the history the store still holds. */
export class RevisionCompactedError extends Error {
  /** The revision asked for. */
  readonly revision: number;
  /**
   * A revision a watch can start from: the oldest the backend still holds (embedded), or the
   * current revision + 1 (etcd, which does not tell). To recover: list, then watch from the
   * listing's revision + 1.
   */
  readonly oldestRevision: number;
  constructor(revision: number, oldestRevision: number) {
    super(`revision ${revision} has been compacted; the oldest watchable revision is ${oldestRevision}`);
    this.name = 'RevisionCompactedError';
    this.revision = revision;
    this.oldestRevision = oldestRevision;
  }
}

/**
 * Thrown by any operation when the store cannot answer it now: etcd unreachable, without quorum
 * (no leader: writes and linearizable reads cannot complete), or past the operation deadline.
 * Nothing was written. The admin API answers 503 with the message; the control plane keeps
 * serving reads (serializable, from a member that is up) and its proxies their last config.
 */
export class StoreUnavailableError extends Error {
  constructor(operation: string, cause: string) {
    super(`store unavailable (${operation}): ${cause}`);
    this.name = 'StoreUnavailableError';
  }
}

/** Thrown by `txn` when a put names a lease that is unknown, expired or revoked; nothing was written. */
export class LeaseNotFoundError extends Error {
  readonly lease: string;
  constructor(lease: string) {
    super(`lease ${lease} not found (expired or revoked)`);
    this.name = 'LeaseNotFoundError';
    this.lease = lease;
  }
}

export interface Store {
  /** The key's current value, or undefined. */
  get(key: string): Promise<KeyValue | undefined>;
  /** Every key with `prefix`, sorted by key, and the revision the listing was taken at. */
  list(prefix: string): Promise<{ readonly items: readonly KeyValue[]; readonly revision: number }>;
  /**
   * Applies `ops` atomically when every condition holds; resolves with the new revision.
   * Throws `TxnConflictError` when a condition fails (nothing written). An empty `ops` list is a
   * no-op that resolves with the current revision (conditions are still checked). Throws
   * `LeaseNotFoundError` for a put on a dead lease, and a plain `Error` when a key is empty or
   * named twice.
   */
  txn(ops: readonly TxnOp[], conditions?: readonly TxnCondition[]): Promise<number>;
  /** The current store revision. */
  revision(): Promise<number>;
  /**
   * Watches `prefix` from `fromRevision` (inclusive; 0 = from now). `onEvents` gets each
   * revision's events together, in order. Throws `RevisionCompactedError` when `fromRevision`
   * was compacted away. `onError` (optional) hears of a watch the backend had to end (e.g. etcd
   * cancelled it after a compaction); no events follow it.
   */
  watch(
    prefix: string,
    fromRevision: number,
    onEvents: (events: readonly WatchEvent[], revision: number) => void,
    onError?: (error: Error) => void,
  ): Promise<Watcher>;
  /** Grants a lease that the store keeps alive until `revoke` or `close` (or the process dies). */
  grantLease(ttlSeconds: number): Promise<Lease>;
  close(): Promise<void>;
}
