/**
 * `MemoryStore`: an in-memory `Store` (control-plane/store/types.ts) for tests, with etcd's
 * semantics where Weft relies on them:
 *
 * - every successful `txn` with at least one op is one new revision; a key's `modRevision` is the
 *   revision of its last write, `createRevision` the revision that created it;
 * - a put under a lease attaches the key to that lease (a later put without one detaches it);
 *   revoking a lease deletes, in one revision, exactly the keys still attached to it;
 * - `watch(prefix, from)` replays the kept history from `from` (inclusive), then delivers live
 *   changes, one callback per revision; `compact(rev)` drops history so that older watches throw.
 *
 * Leases never expire by time (the real stores keep them alive); `expireLease(id)` simulates an
 * expiry. Test helpers: `leases()` lists live lease ids, `writes` counts txns that wrote.
 */
import {
  type KeyValue,
  type Lease,
  type Store,
  type TxnCondition,
  TxnConflictError,
  type TxnOp,
  type WatchEvent,
  type Watcher,
} from '../../control-plane/store/types.ts';

interface WatchEntry {
  readonly prefix: string;
  readonly onEvents: (events: readonly WatchEvent[], revision: number) => void;
}

interface LeaseEntry {
  readonly ttlSeconds: number;
  readonly keys: Set<string>;
}

export class MemoryStore implements Store {
  readonly #data = new Map<string, KeyValue>();
  readonly #history: { revision: number; events: WatchEvent[] }[] = [];
  readonly #watches = new Set<WatchEntry>();
  readonly #leases = new Map<string, LeaseEntry>();
  #revision = 1;
  #compacted = 0;
  #nextLease = 1;
  #closed = false;
  /** Number of txns that wrote something (a revision each). */
  writes = 0;

  async get(key: string): Promise<KeyValue | undefined> {
    this.#check();
    return this.#data.get(key);
  }

  async list(prefix: string): Promise<{ readonly items: readonly KeyValue[]; readonly revision: number }> {
    this.#check();
    const items = [...this.#data.values()]
      .filter((kv) => kv.key.startsWith(prefix))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { items, revision: this.#revision };
  }

  async txn(ops: readonly TxnOp[], conditions: readonly TxnCondition[] = []): Promise<number> {
    this.#check();
    for (const c of conditions) {
      if ((this.#data.get(c.key)?.modRevision ?? 0) !== c.modRevision) throw new TxnConflictError(c.key);
    }
    for (const op of ops) {
      if (op.op === 'put' && op.lease !== undefined && !this.#leases.has(op.lease)) {
        throw new Error(`lease ${op.lease} not found`);
      }
    }
    if (ops.length === 0) return this.#revision;
    const revision = this.#revision + 1;
    const events: WatchEvent[] = [];
    for (const op of ops) {
      const old = this.#data.get(op.key);
      if (old?.lease !== undefined) this.#leases.get(old.lease)?.keys.delete(op.key);
      if (op.op === 'put') {
        this.#data.set(op.key, {
          key: op.key,
          value: op.value,
          modRevision: revision,
          createRevision: old?.createRevision ?? revision,
          lease: op.lease,
        });
        if (op.lease !== undefined) this.#leases.get(op.lease)?.keys.add(op.key);
        events.push({ type: 'put', key: op.key, value: op.value, modRevision: revision });
      } else if (old !== undefined) {
        this.#data.delete(op.key);
        events.push({ type: 'delete', key: op.key, value: old.value, modRevision: revision });
      }
    }
    this.#commit(revision, events);
    return revision;
  }

  async revision(): Promise<number> {
    this.#check();
    return this.#revision;
  }

  async watch(
    prefix: string,
    fromRevision: number,
    onEvents: (events: readonly WatchEvent[], revision: number) => void,
  ): Promise<Watcher> {
    this.#check();
    if (fromRevision > 0 && fromRevision <= this.#compacted) {
      throw new Error(`revision ${fromRevision} has been compacted (compacted up to ${this.#compacted})`);
    }
    const entry: WatchEntry = { prefix, onEvents };
    if (fromRevision > 0) {
      for (const h of this.#history) {
        if (h.revision < fromRevision) continue;
        const mine = h.events.filter((e) => e.key.startsWith(prefix));
        if (mine.length > 0) onEvents(mine, h.revision);
      }
    }
    this.#watches.add(entry);
    return {
      close: async () => {
        this.#watches.delete(entry);
      },
    };
  }

  async grantLease(ttlSeconds: number): Promise<Lease> {
    this.#check();
    const id = String(this.#nextLease++);
    this.#leases.set(id, { ttlSeconds, keys: new Set() });
    return { id, ttlSeconds, revoke: async () => this.#dropLease(id) };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#watches.clear();
  }

  /** Simulates the expiry of lease `id`: its keys are deleted in one revision. */
  expireLease(id: string): void {
    this.#dropLease(id);
  }

  /** Ids of the live leases. */
  leases(): string[] {
    return [...this.#leases.keys()];
  }

  /** Drops history up to and including `revision`. */
  compact(revision: number): void {
    this.#compacted = Math.max(this.#compacted, revision);
    while (this.#history.length > 0 && (this.#history[0]?.revision ?? 0) <= revision) this.#history.shift();
  }

  #dropLease(id: string): void {
    const lease = this.#leases.get(id);
    if (lease === undefined) return;
    this.#leases.delete(id);
    const keys = [...lease.keys].filter((k) => this.#data.get(k)?.lease === id);
    if (keys.length === 0) return;
    const revision = this.#revision + 1;
    const events: WatchEvent[] = [];
    for (const key of keys.sort()) {
      const old = this.#data.get(key) as KeyValue;
      this.#data.delete(key);
      events.push({ type: 'delete', key, value: old.value, modRevision: revision });
    }
    this.#commit(revision, events);
  }

  #commit(revision: number, events: WatchEvent[]): void {
    this.#revision = revision;
    this.writes++;
    this.#history.push({ revision, events });
    for (const w of this.#watches) {
      const mine = events.filter((e) => e.key.startsWith(w.prefix));
      if (mine.length > 0) w.onEvents(mine, revision);
    }
  }

  #check(): void {
    if (this.#closed) throw new Error('store is closed');
  }
}
