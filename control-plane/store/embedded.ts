/**
 * The embedded store: the zero-setup `Store` for one machine, kept in memory and made durable in
 * a data dir (see embedded-files.ts for the files). Follows etcd v3 API semantics: one revision
 * per txn that changes something, `modRevision`/`createRevision` per key, watches from a past
 * revision, keys attached to leases.
 *
 * Invariants:
 * - Writes (txn, lease revoke, snapshot, close) run one at a time, in call order. A txn's
 *   conditions are checked against the state its predecessors left; its changes are appended to
 *   the log and fsync'd before they are applied in memory, published to watchers and resolved.
 *   Reads see only durable revisions.
 * - A failed log append marks the store failed: every later write rejects (reads still work);
 *   reopen to recover from what reached the disk.
 * - Leases live in memory only. An in-process lease never expires: it ends on `revoke()` or
 *   `close()` (the TTL only matters for etcd, where the owner process can die while the store
 *   lives on). On open, keys still attached to a lease from an earlier run are deleted in one txn,
 *   since their owners are gone.
 * - One process owns the data dir (lock file); a second open throws.
 * - Watch history: the last `historyRevisions` revisions (and about `historyBytes`) since the
 *   open; after a restart, only revisions after the last snapshot can be replayed.
 */
import { randomBytes } from 'node:crypto';
import { DataFiles, type LoggedOp, type Recovered } from './embedded-files.ts';
import { WatchHub } from './embedded-watch.ts';
import { processWarningLogger, type StoreLogger } from './logger.ts';
import { checkOps, compareKeys } from './txn-check.ts';
import {
  type KeyValue,
  type Lease,
  LeaseNotFoundError,
  type Store,
  type TxnCondition,
  TxnConflictError,
  type TxnOp,
  type WatchEvent,
  type Watcher,
} from './types.ts';

export interface EmbeddedStoreOptions {
  /** Snapshot (and empty the log) after this many txns; default 1000. Always on close. */
  readonly snapshotEveryTxns?: number;
  /** Revisions kept in memory for `watch` replay; default 10 000. */
  readonly historyRevisions?: number;
  /** Approximate bytes of keys and values kept for replay; default 64 MiB. */
  readonly historyBytes?: number;
  /** Where background failures (a snapshot) are reported; default process warnings. */
  readonly logger?: StoreLogger;
}

/** Opens (creating if needed) the embedded store in `dataDir`; see `EmbeddedStore.open`. */
export function openEmbeddedStore(
  dataDir: string,
  options: EmbeddedStoreOptions = {},
): Promise<EmbeddedStore> {
  return EmbeddedStore.open(dataDir, options);
}

export class EmbeddedStore implements Store {
  readonly #files: DataFiles;
  readonly #hub: WatchHub;
  readonly #logger: StoreLogger;
  readonly #snapshotEvery: number;
  readonly #kvs = new Map<string, KeyValue>();
  /** Live lease id → keys attached to it. */
  readonly #leases = new Map<string, Set<string>>();
  #revision = 0;
  #sinceSnapshot = 0;
  /** The tail of the write queue; never rejects. */
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;
  #failed: Error | undefined;

  private constructor(files: DataFiles, recovered: Recovered, options: EmbeddedStoreOptions) {
    this.#files = files;
    this.#logger = options.logger ?? processWarningLogger;
    this.#snapshotEvery = options.snapshotEveryTxns ?? 1000;
    const { snapshot, log } = recovered;
    for (const kv of snapshot.kvs) this.#kvs.set(kv.key, kv);
    this.#revision = snapshot.revision;
    this.#hub = new WatchHub(snapshot.revision + 1, {
      maxRevisions: options.historyRevisions ?? 10_000,
      maxBytes: options.historyBytes ?? 64 * 1024 * 1024,
    });
    for (const entry of log) {
      if (entry.rev <= this.#revision) continue;
      if (entry.rev !== this.#revision + 1) {
        throw new Error(`store log jumps from revision ${this.#revision} to ${entry.rev}`);
      }
      this.#hub.publish(entry.rev, this.#apply(entry.rev, entry.ops));
      this.#revision = entry.rev;
      this.#sinceSnapshot++;
    }
  }

  /**
   * Opens the store in `dataDir`: takes the lock, loads the snapshot, replays the log (ignoring a
   * torn last line) and deletes keys left attached to leases (one txn, when there are any).
   * Throws when another live process owns `dataDir` or the files are corrupt.
   */
  static async open(dataDir: string, options: EmbeddedStoreOptions = {}): Promise<EmbeddedStore> {
    const { files, recovered } = await DataFiles.open(dataDir);
    if (recovered.tornTail) {
      (options.logger ?? processWarningLogger).warn(
        { dataDir },
        'store log had a torn last line; dropped it',
      );
    }
    let store: EmbeddedStore;
    try {
      store = new EmbeddedStore(files, recovered, options);
    } catch (error) {
      await files.close();
      throw error;
    }
    try {
      await store.#serial(() => store.#deleteOrphanedLeaseKeys());
    } catch (error) {
      await store.close().catch(() => {});
      throw error;
    }
    return store;
  }

  async get(key: string): Promise<KeyValue | undefined> {
    this.#assertOpen();
    return this.#kvs.get(key);
  }

  async list(prefix: string): Promise<{ readonly items: readonly KeyValue[]; readonly revision: number }> {
    this.#assertOpen();
    const items: KeyValue[] = [];
    for (const kv of this.#kvs.values()) if (kv.key.startsWith(prefix)) items.push(kv);
    items.sort((a, b) => compareKeys(a.key, b.key));
    return { items, revision: this.#revision };
  }

  async revision(): Promise<number> {
    this.#assertOpen();
    return this.#revision;
  }

  async txn(ops: readonly TxnOp[], conditions: readonly TxnCondition[] = []): Promise<number> {
    this.#assertOpen();
    checkOps(ops);
    return this.#serial(async () => {
      for (const condition of conditions) {
        if ((this.#kvs.get(condition.key)?.modRevision ?? 0) !== condition.modRevision) {
          throw new TxnConflictError(condition.key);
        }
      }
      const changes: LoggedOp[] = [];
      for (const op of ops) {
        if (op.op === 'put') {
          if (op.lease !== undefined && !this.#leases.has(op.lease)) throw new LeaseNotFoundError(op.lease);
          changes.push(op.lease === undefined ? { op: 'put', key: op.key, value: op.value } : op);
        } else if (this.#kvs.has(op.key)) {
          changes.push({ op: 'delete', key: op.key });
        }
      }
      return this.#commit(changes);
    });
  }

  async watch(
    prefix: string,
    fromRevision: number,
    onEvents: (events: readonly WatchEvent[], revision: number) => void,
  ): Promise<Watcher> {
    this.#assertOpen();
    return this.#hub.watch(prefix, fromRevision === 0 ? this.#revision + 1 : fromRevision, onEvents);
  }

  /** Grants an in-process lease; it lasts until `revoke()` or `close()` (see the header). */
  async grantLease(ttlSeconds: number): Promise<Lease> {
    this.#assertOpen();
    if (!(ttlSeconds > 0)) throw new Error(`lease TTL must be positive, got ${ttlSeconds}`);
    let id = BigInt(`0x${randomBytes(8).toString('hex')}`) & 0x7fff_ffff_ffff_ffffn;
    while (id === 0n || this.#leases.has(String(id))) id = (id + 1n) & 0x7fff_ffff_ffff_ffffn;
    const leaseId = String(id);
    this.#leases.set(leaseId, new Set());
    return {
      id: leaseId,
      ttlSeconds,
      revoke: () => this.#revoke(leaseId),
      onLost: () => {},
    };
  }

  /**
   * Drops watch history below `revision` (etcd's compact): later watches from an older revision
   * throw `RevisionCompactedError`. Throws when `revision` is in the future.
   */
  async compact(revision: number): Promise<void> {
    this.#assertOpen();
    if (revision > this.#revision) {
      throw new Error(`cannot compact to revision ${revision}: the store is at ${this.#revision}`);
    }
    this.#hub.compact(revision);
  }

  /**
   * Waits for queued writes, writes a snapshot, closes watchers and releases the data dir.
   * Leases end (their keys are deleted at the next open). Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.#serial(async () => {
        if (this.#sinceSnapshot > 0 && this.#failed === undefined) await this.#snapshot();
      });
    } finally {
      this.#hub.closeAll();
      this.#leases.clear();
      await this.#files.close();
    }
  }

  /** Revokes a lease: forgets it and deletes its keys in one txn. Resolves when already gone. */
  async #revoke(leaseId: string): Promise<void> {
    if (this.#closed) return;
    return this.#serial(async () => {
      const keys = this.#leases.get(leaseId);
      if (keys === undefined) return;
      this.#leases.delete(leaseId);
      await this.#commit([...keys].sort(compareKeys).map((key) => ({ op: 'delete', key })));
    });
  }

  async #deleteOrphanedLeaseKeys(): Promise<void> {
    const orphaned: LoggedOp[] = [];
    for (const kv of this.#kvs.values()) {
      if (kv.lease !== undefined && !this.#leases.has(kv.lease)) orphaned.push({ op: 'delete', key: kv.key });
    }
    await this.#commit(orphaned);
  }

  /** Logs, applies and publishes `changes` as the next revision; none → current revision. */
  async #commit(changes: readonly LoggedOp[]): Promise<number> {
    if (changes.length === 0) return this.#revision;
    if (this.#failed !== undefined) throw new Error(`store is failed: ${this.#failed.message}`);
    const rev = this.#revision + 1;
    try {
      await this.#files.append({ rev, ops: changes });
    } catch (error) {
      this.#failed = error as Error;
      throw error;
    }
    const events = this.#apply(rev, changes);
    this.#revision = rev;
    this.#hub.publish(rev, events);
    if (++this.#sinceSnapshot >= this.#snapshotEvery) {
      void this.#serial(() => this.#snapshot()).catch((error: Error) => {
        this.#logger.warn({ error: error.message, revision: this.#revision }, 'store snapshot failed');
      });
    }
    return rev;
  }

  /** Applies logged changes to the maps; returns the watch events. */
  #apply(rev: number, changes: readonly LoggedOp[]): WatchEvent[] {
    const events: WatchEvent[] = [];
    for (const change of changes) {
      const previous = this.#kvs.get(change.key);
      if (previous?.lease !== undefined) this.#leases.get(previous.lease)?.delete(change.key);
      if (change.op === 'put') {
        const lease = change.lease;
        this.#kvs.set(change.key, {
          key: change.key,
          value: change.value,
          modRevision: rev,
          createRevision: previous?.createRevision ?? rev,
          lease,
        });
        if (lease !== undefined) this.#leases.get(lease)?.add(change.key);
        events.push({ type: 'put', key: change.key, value: change.value, modRevision: rev });
      } else if (previous !== undefined) {
        this.#kvs.delete(change.key);
        events.push({ type: 'delete', key: change.key, value: previous.value, modRevision: rev });
      }
    }
    return events;
  }

  async #snapshot(): Promise<void> {
    if (this.#sinceSnapshot === 0) return;
    await this.#files.writeSnapshot({ revision: this.#revision, kvs: [...this.#kvs.values()] });
    this.#sinceSnapshot = 0;
  }

  /** Runs `task` after every earlier write; the queue survives a rejected task. */
  #serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(task);
    this.#tail = run.catch(() => {});
    return run;
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('store is closed');
  }
}
