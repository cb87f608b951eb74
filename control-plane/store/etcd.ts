/**
 * The etcd backend of `Store` (production; several control-plane replicas share one etcd), on the
 * `etcd3` client. etcd v3 API semantics map one to one:
 *
 * - get/list are linearizable ranges; `list` returns the response header revision.
 * - `txn` is one etcd Txn: each condition compares the key's mod revision (0 → create revision 0,
 *   i.e. the key is missing), the success branch holds the puts/deletes, and the failure branch
 *   reads the condition keys so the error names the first that failed. A txn that changes
 *   nothing does not create a revision in etcd either.
 * - `watch` is an etcd watch on the prefix from the start revision (with previous values, so
 *   deletes carry the last value); a response's events are split into per-revision groups. The
 *   client reconnects and resumes on its own. A start revision below etcd's compaction revision
 *   throws `RevisionCompactedError` (checked with a range at that revision before watching).
 * - Leases are `client.lease(ttl)`, kept alive by the client until `revoke()`. `close()` stops the
 *   keepalives without revoking, so the keys expire after their TTL, as if the process died.
 *   A lease etcd reports lost (keepalives failed for a TTL, or it expired) is reported to its
 *   `onLost` listeners, or logged when there are none; the owner re-grants and re-registers.
 * - Availability: every call has a deadline (`timeoutMs`, default 5000 ms; linearizable reads
 *   `READ_DEADLINE_MS`). An unreachable etcd, a cluster without quorum (no leader) or a missed
 *   deadline throws `StoreUnavailableError`, except for `get` and `list`, which then fall back to
 *   a serializable (member-local) read from a member that is up: without quorum the control plane
 *   stays readable (possibly slightly stale) and refuses writes with a clear error.
 */
import {
  Etcd3,
  type Lease as EtcdLease,
  EtcdLeaseInvalidError,
  type Watcher as EtcdWatcher,
  GRPCDeadlineExceededError,
  GRPCUnavailableError,
  type IKeyValue,
} from 'etcd3';
import { ROOT } from './keys.ts';
import { processWarningLogger, type StoreLogger } from './logger.ts';
import { checkOps } from './txn-check.ts';
import {
  type KeyValue,
  type Lease,
  LeaseNotFoundError,
  RevisionCompactedError,
  type Store,
  StoreUnavailableError,
  type TxnCondition,
  TxnConflictError,
  type TxnOp,
  type WatchEvent,
  type Watcher,
} from './types.ts';

/** Deadline of a linearizable read before the serializable fallback, milliseconds. */
const READ_DEADLINE_MS = 2000;

/** True for the errors that mean "etcd cannot answer now" (unreachable, no quorum, deadline). */
function isUnavailable(error: unknown): boolean {
  if (error instanceof GRPCUnavailableError || error instanceof GRPCDeadlineExceededError) return true;
  const message = (error as Error | undefined)?.message ?? '';
  return /circuit breaker is open|no leader|request timed out|leader changed|No connection established|ECONNREFUSED|deadline/i.test(
    message,
  );
}

export interface EtcdStoreOptions {
  /** How long `open` waits for etcd's first answer, and `watch` for its watch; default 5000 ms. */
  readonly connectTimeoutMs?: number;
  /** Where lost leases without listeners and watch errors without `onError` are reported. */
  readonly logger?: StoreLogger;
}

/** Connects to etcd at `endpoints` (`http://host:port`); see `EtcdStore.open`. */
export function openEtcdStore(
  endpoints: readonly string[],
  options: EtcdStoreOptions = {},
): Promise<EtcdStore> {
  return EtcdStore.open(endpoints, options);
}

export class EtcdStore implements Store {
  readonly #client: Etcd3;
  /**
   * One single-endpoint client per member, for serializable fallback reads: the main client's
   * per-host circuit breakers open on the timeouts of a cluster without quorum, including the
   * live member's, so fallback reads go to each member in turn through their own clients.
   */
  readonly #members: readonly Etcd3[];
  readonly #logger: StoreLogger;
  readonly #timeoutMs: number;
  readonly #leases = new Set<EtcdLease>();
  readonly #watchers = new Set<EtcdWatcher>();
  #closed = false;

  private constructor(client: Etcd3, members: readonly Etcd3[], logger: StoreLogger, timeoutMs: number) {
    this.#client = client;
    this.#members = members;
    this.#logger = logger;
    this.#timeoutMs = timeoutMs;
  }

  /**
   * Creates the client and waits (up to `connectTimeoutMs`) for one successful range.
   * Throws (and closes the client) when etcd does not answer.
   */
  static async open(endpoints: readonly string[], options: EtcdStoreOptions = {}): Promise<EtcdStore> {
    if (endpoints.length === 0) throw new Error('etcd store: no endpoints');
    const timeoutMs = options.connectTimeoutMs ?? 5000;
    const client = new Etcd3({ hosts: [...endpoints], dialTimeout: timeoutMs });
    try {
      await client.kv.range(
        { key: Buffer.from(ROOT), count_only: true },
        { deadline: Date.now() + timeoutMs },
      );
    } catch (error) {
      client.close();
      throw new Error(`etcd at ${endpoints.join(', ')} did not answer: ${(error as Error).message}`);
    }
    const members = endpoints.map((host) => new Etcd3({ hosts: [host], dialTimeout: READ_DEADLINE_MS }));
    return new EtcdStore(client, members, options.logger ?? processWarningLogger, timeoutMs);
  }

  async get(key: string): Promise<KeyValue | undefined> {
    this.#assertOpen();
    const res = await this.#read('get', (client, serializable, deadline) =>
      client.kv.range({ key: Buffer.from(key), serializable }, { deadline }),
    );
    const kv = res.kvs[0];
    return kv === undefined ? undefined : toKeyValue(kv);
  }

  async list(prefix: string): Promise<{ readonly items: readonly KeyValue[]; readonly revision: number }> {
    this.#assertOpen();
    const key = Buffer.from(prefix === '' ? '\0' : prefix);
    const rangeEnd = prefix === '' ? Buffer.from('\0') : prefixEnd(Buffer.from(prefix));
    const res = await this.#read('list', (client: Etcd3, serializable: boolean, deadline: Date) =>
      client.kv.range(
        { key, range_end: rangeEnd, serializable, sort_order: 'Ascend', sort_target: 'Key' },
        { deadline },
      ),
    );
    return { items: res.kvs.map(toKeyValue), revision: Number(res.header.revision) };
  }

  async revision(): Promise<number> {
    this.#assertOpen();
    try {
      const res = await this.#client.kv.range(
        { key: Buffer.from(ROOT), count_only: true },
        { deadline: Date.now() + READ_DEADLINE_MS },
      );
      return Number(res.header.revision);
    } catch (error) {
      if (isUnavailable(error)) throw new StoreUnavailableError('revision', etcdCause(error));
      throw error;
    }
  }

  /** A linearizable read, or a serializable one from a live member when etcd cannot do that now. */
  async #read<T>(
    operation: string,
    range: (client: Etcd3, serializable: boolean, deadline: Date) => Promise<T>,
  ): Promise<T> {
    try {
      return await range(this.#client, false, new Date(Date.now() + READ_DEADLINE_MS));
    } catch (error) {
      if (!isUnavailable(error)) throw error;
      let last: unknown = error;
      for (const member of this.#members) {
        try {
          return await range(member, true, new Date(Date.now() + READ_DEADLINE_MS / 2));
        } catch (fallback) {
          if (!isUnavailable(fallback)) throw fallback;
          last = fallback;
        }
      }
      throw new StoreUnavailableError(operation, etcdCause(last));
    }
  }

  async txn(ops: readonly TxnOp[], conditions: readonly TxnCondition[] = []): Promise<number> {
    this.#assertOpen();
    checkOps(ops);
    if (ops.length === 0 && conditions.length === 0) return this.revision();
    let res: Awaited<ReturnType<Etcd3['kv']['txn']>>;
    try {
      res = await this.#client.kv.txn(
        {
          compare: conditions.map((c) =>
            c.modRevision === 0
              ? { key: Buffer.from(c.key), target: 'Create', result: 'Equal', create_revision: 0 }
              : { key: Buffer.from(c.key), target: 'Mod', result: 'Equal', mod_revision: c.modRevision },
          ),
          success: ops.map((op) =>
            op.op === 'put'
              ? {
                  request_put: {
                    key: Buffer.from(op.key),
                    value: Buffer.from(op.value),
                    lease: op.lease ?? 0,
                  },
                }
              : { request_delete_range: { key: Buffer.from(op.key) } },
          ),
          failure: conditions.map((c) => ({ request_range: { key: Buffer.from(c.key), keys_only: true } })),
        },
        { deadline: new Date(Date.now() + this.#timeoutMs) },
      );
    } catch (error) {
      if (error instanceof EtcdLeaseInvalidError) {
        const leased = ops.find((op) => op.op === 'put' && op.lease !== undefined);
        throw new LeaseNotFoundError(leased?.op === 'put' ? (leased.lease ?? '') : '');
      }
      if (isUnavailable(error)) throw new StoreUnavailableError('write', etcdCause(error));
      throw error;
    }
    if (!res.succeeded) {
      const failed = conditions.find((c, i) => {
        const kv = res.responses[i]?.response_range.kvs[0];
        return Number(kv?.mod_revision ?? 0) !== c.modRevision;
      });
      throw new TxnConflictError((failed ?? conditions[0])?.key ?? '');
    }
    return Number(res.header.revision);
  }

  async watch(
    prefix: string,
    fromRevision: number,
    onEvents: (events: readonly WatchEvent[], revision: number) => void,
    onError?: (error: Error) => void,
  ): Promise<Watcher> {
    this.#assertOpen();
    if (fromRevision > 0) await this.#checkNotCompacted(fromRevision);
    const builder = this.#client.watch().prefix(prefix).withPreviousKV();
    if (fromRevision > 0) builder.startRevision(String(fromRevision));
    const watcher = builder.watcher();
    let connected = false;
    watcher.on('data', (res) => {
      let group: WatchEvent[] = [];
      const flush = (): void => {
        if (group.length > 0) onEvents(group, group[0]!.modRevision);
        group = [];
      };
      for (const event of res.events) {
        const revision = Number(event.kv.mod_revision);
        if (group.length > 0 && group[0]!.modRevision !== revision) flush();
        group.push({
          type: event.type === 'Put' ? 'put' : 'delete',
          key: event.kv.key.toString(),
          value: event.type === 'Put' ? event.kv.value.toString() : (event.prev_kv?.value.toString() ?? ''),
          modRevision: revision,
        });
      }
      flush();
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#watchers.delete(watcher);
        void watcher.cancel().catch(() => {});
        reject(new Error(`etcd watch on ${prefix} not established within ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
      watcher.once('connected', () => {
        clearTimeout(timer);
        connected = true;
        resolve();
      });
      watcher.on('error', (error) => {
        this.#watchers.delete(watcher);
        if (!connected) {
          clearTimeout(timer);
          reject(error);
        } else if (onError) onError(error);
        else this.#logger.warn({ prefix, error: error.message }, 'etcd watch ended');
      });
      this.#watchers.add(watcher);
    });
    return {
      close: async () => {
        if (!this.#watchers.delete(watcher)) return;
        await watcher.cancel();
      },
    };
  }

  async grantLease(ttlSeconds: number): Promise<Lease> {
    this.#assertOpen();
    const lease = this.#client.lease(ttlSeconds);
    const id = await lease.grant();
    this.#leases.add(lease);
    const listeners: ((error: Error) => void)[] = [];
    lease.on('lost', (error) => {
      this.#leases.delete(lease);
      if (listeners.length === 0) this.#logger.warn({ lease: id, error: error.message }, 'etcd lease lost');
      for (const listener of listeners) listener(error);
    });
    return {
      id,
      ttlSeconds,
      revoke: async () => {
        if (!this.#leases.delete(lease)) return;
        try {
          await lease.revoke();
        } catch (error) {
          if (!(error instanceof EtcdLeaseInvalidError)) throw error;
        }
      },
      onLost: (listener) => {
        listeners.push(listener);
      },
    };
  }

  /**
   * Compacts etcd's history below `revision` (etcd Compact): watches from older revisions throw
   * `RevisionCompactedError` afterwards. Affects every client of this etcd.
   */
  async compact(revision: number): Promise<void> {
    this.#assertOpen();
    await this.#client.kv.compact({ revision, physical: false });
  }

  /**
   * Cancels watchers, stops lease keepalives (the leases expire after their TTL; call `revoke`
   * first to delete their keys now) and closes the client. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const lease of this.#leases) lease.release();
    this.#leases.clear();
    const watchers = [...this.#watchers];
    this.#watchers.clear();
    await Promise.race([
      Promise.allSettled(watchers.map((w) => w.cancel())),
      new Promise((resolve) => setTimeout(resolve, 1000).unref()),
    ]);
    this.#client.close();
    for (const member of this.#members) member.close();
  }

  /** Throws `RevisionCompactedError` when etcd no longer holds `revision` (a future one is fine). */
  async #checkNotCompacted(revision: number): Promise<void> {
    try {
      await this.#client.kv.range({ key: Buffer.from(ROOT), count_only: true, revision });
    } catch (error) {
      const message = (error as Error).message;
      if (message.includes('future revision')) return;
      if (message.includes('compacted'))
        throw new RevisionCompactedError(revision, (await this.revision()) + 1);
      throw error;
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('store is closed');
  }
}

function toKeyValue(kv: IKeyValue): KeyValue {
  return {
    key: kv.key.toString(),
    value: kv.value.toString(),
    modRevision: Number(kv.mod_revision),
    createRevision: Number(kv.create_revision),
    lease: kv.lease === '0' || kv.lease === '' ? undefined : String(kv.lease),
  };
}

/** The first key after every key with `prefix` (etcd's range_end for a prefix). */
function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] as number) < 0xff) {
      end[i] = (end[i] as number) + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from('\0');
}

/** Why etcd could not answer, in words (no quorum / unreachable / deadline). */
function etcdCause(error: unknown): string {
  const message = (error as Error | undefined)?.message ?? String(error);
  if (error instanceof GRPCDeadlineExceededError || /deadline|timed out/i.test(message))
    return `etcd did not answer in time (no quorum or unreachable): ${message}`;
  return `etcd unreachable or without quorum: ${message}`;
}
