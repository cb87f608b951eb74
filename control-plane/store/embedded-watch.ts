/**
 * Watches for the embedded store: a bounded in-memory history of recent revisions and the set of
 * live watchers (etcd v3 API semantics: a watch from revision R gets every event with revision
 * >= R in revision order, then live ones; a watch from before the kept history is "compacted").
 *
 * Invariants: the history holds every revision from `oldest` to the newest published one, each
 * with all of its events (every revision has at least one event, so it is contiguous). It is
 * trimmed from the front to at most `maxRevisions` revisions and about `maxBytes` of keys and
 * values, always keeping the newest. Delivery is asynchronous (setImmediate), one callback per
 * revision, in order; a watcher's callback is never called after its `close()`.
 */
import { RevisionCompactedError, type WatchEvent, type Watcher } from './types.ts';

export type OnEvents = (events: readonly WatchEvent[], revision: number) => void;

interface Revision {
  readonly revision: number;
  readonly events: readonly WatchEvent[];
  readonly bytes: number;
}

export interface WatchHubLimits {
  /** Revisions kept for replay (default 10 000). */
  readonly maxRevisions: number;
  /** Approximate bytes of keys and values kept for replay (default 64 MiB). */
  readonly maxBytes: number;
}

export class WatchHub {
  readonly #limits: WatchHubLimits;
  readonly #watchers = new Set<HubWatcher>();
  /** `#history[#head..]` are the kept revisions, oldest first. */
  #history: Revision[] = [];
  #head = 0;
  #bytes = 0;
  #oldest: number;

  /** `oldest`: the oldest revision a watch may start from (the history is empty until then). */
  constructor(oldest: number, limits: WatchHubLimits) {
    this.#oldest = oldest;
    this.#limits = limits;
  }

  /** The oldest revision a watch may start from. */
  get oldest(): number {
    return this.#oldest;
  }

  /** Records `revision` (the next one after the newest) and offers it to every watcher. */
  publish(revision: number, events: readonly WatchEvent[]): void {
    let bytes = 0;
    for (const event of events) bytes += event.key.length + event.value.length;
    this.#history.push({ revision, events, bytes });
    this.#bytes += bytes;
    this.#trim(this.#limits.maxRevisions, this.#limits.maxBytes);
    for (const watcher of this.#watchers) watcher.offer(revision, events);
  }

  /** Drops the history below `revision` (etcd's compact). */
  compact(revision: number): void {
    while (this.#head < this.#history.length && this.#history[this.#head]!.revision < revision)
      this.#dropOldest();
    this.#oldest = Math.max(this.#oldest, revision);
    this.#pack();
  }

  /**
   * Starts a watcher on `prefix` from revision `from` (>= 1): queues the kept revisions >= `from`,
   * then live ones. Throws `RevisionCompactedError` when `from` < `oldest`.
   */
  watch(prefix: string, from: number, onEvents: OnEvents): Watcher {
    if (from < this.#oldest) throw new RevisionCompactedError(from, this.#oldest);
    const watcher = new HubWatcher(prefix, from, onEvents, (w) => this.#watchers.delete(w));
    for (let i = this.#head; i < this.#history.length; i++) {
      const kept = this.#history[i]!;
      watcher.offer(kept.revision, kept.events);
    }
    this.#watchers.add(watcher);
    return watcher;
  }

  /** Closes every watcher (no more callbacks). */
  closeAll(): void {
    for (const watcher of this.#watchers) watcher.stop();
    this.#watchers.clear();
  }

  #trim(maxRevisions: number, maxBytes: number): void {
    while (this.#history.length - this.#head > 1) {
      if (this.#history.length - this.#head <= maxRevisions && this.#bytes <= maxBytes) break;
      this.#dropOldest();
    }
    this.#pack();
  }

  #dropOldest(): void {
    const dropped = this.#history[this.#head]!;
    this.#head++;
    this.#bytes -= dropped.bytes;
    this.#oldest = dropped.revision + 1;
  }

  /** Reclaims the dropped front of the array once it is the larger part. */
  #pack(): void {
    if (this.#head > 1024 && this.#head * 2 > this.#history.length) {
      this.#history = this.#history.slice(this.#head);
      this.#head = 0;
    }
  }
}

class HubWatcher implements Watcher {
  readonly #prefix: string;
  readonly #from: number;
  readonly #onEvents: OnEvents;
  readonly #onClose: (watcher: HubWatcher) => void;
  #queue: { revision: number; events: readonly WatchEvent[] }[] = [];
  #scheduled = false;
  #closed = false;

  constructor(prefix: string, from: number, onEvents: OnEvents, onClose: (watcher: HubWatcher) => void) {
    this.#prefix = prefix;
    this.#from = from;
    this.#onEvents = onEvents;
    this.#onClose = onClose;
  }

  /** Queues this revision's events under the prefix (if any) and schedules delivery. */
  offer(revision: number, events: readonly WatchEvent[]): void {
    if (this.#closed || revision < this.#from) return;
    const mine = events.filter((event) => event.key.startsWith(this.#prefix));
    if (mine.length === 0) return;
    this.#queue.push({ revision, events: mine });
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.#drain());
    }
  }

  /** Stops delivery without unregistering (the hub clears its set itself). */
  stop(): void {
    this.#closed = true;
    this.#queue = [];
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.stop();
    this.#onClose(this);
  }

  #drain(): void {
    this.#scheduled = false;
    const batch = this.#queue;
    this.#queue = [];
    for (const { revision, events } of batch) {
      if (this.#closed) return;
      try {
        this.#onEvents(events, revision);
      } catch (error) {
        // A throwing callback is a bug in the caller: surface it as uncaught, keep delivering.
        setImmediate(() => {
          throw error;
        });
      }
    }
  }
}
