/**
 * Circuit breaking for one cluster, in two parts.
 *
 * 1. **Pool limits** (`PoolLimits`, Envoy circuit breaking: `max_connections`, `max_pending_requests`,
 *    `max_requests`, `max_retries`). Counters, not queues: a downstream request is admitted while the
 *    cluster has fewer than `maxRequests` active requests and fewer than `maxPendingRequests` pending
 *    ones, where *pending* means active beyond the connection capacity (the sum of the routable
 *    endpoints' pool `connections`; with HTTP/1.1 and no pipelining a connection carries one request,
 *    so those requests wait in an undici queue for a connection). `maxConnections` is enforced by the
 *    pools themselves: each endpoint pool's `connections` is `max(1, ⌊maxConnections / endpoints⌋)`,
 *    capped by `connectionPool.maxConnectionsPerEndpoint` (the share is fixed when the pool is made;
 *    see cluster-manager.ts). A retry is admitted while fewer than `maxRetries` retries are active —
 *    from admission, including the time spent in backoff, until `releaseRetry`. Over a limit → 503
 *    OVERFLOW and `weft_overflow_total{cluster, limit}`.
 *
 * 2. **Error-rate breakers** (`BreakerSet`, one per endpoint, opossum's state machine). Off unless
 *    `errorThresholdPercent` > 0. Every recorded attempt is fed to the endpoint's opossum breaker as one
 *    `fire()` that resolves (success: any response below 500) or rejects (5xx, connect failure, reset,
 *    timeout); opossum keeps the rolling window (`windowMs` in 10 buckets, rotated by one shared
 *    per-cluster timer), and opens when at least `volumeThreshold` attempts fell in the window and more
 *    than `errorThresholdPercent` % of them failed. OPEN endpoints are not picked; after
 *    `resetTimeoutMs` opossum goes HALF_OPEN and exactly one request — the probe — may be sent: the
 *    first pick of the endpoint takes it, and its outcome closes or reopens the breaker (a probe whose
 *    attempt ends without a verdict, e.g. the client left, or that is never recorded within
 *    `resetTimeoutMs`, is handed out again; an attempt sent before the breaker opened whose outcome only
 *    arrives while it is half-open gives the verdict like a probe would). State changes are published
 *    on `weft:breaker` (gauge `weft_circuit_breaker_state{cluster, endpoint}`: 0 closed, 1 half-open,
 *    2 open). opossum keeps its window across a close, so with `resetTimeoutMs` < `windowMs` failures
 *    from before the opening still count after it; the defaults make the two equal.
 *
 * Invariants: `admitRequest`/`admitRetry` allocate nothing; counters never go below zero (a stray
 * release is ignored); a breaker set owns one interval timer (unref'd) while it has breakers, and
 * `close()` stops it and shuts every breaker down.
 */
import { EventEmitter } from 'node:events';
import CircuitBreaker from 'opossum';
import type { CircuitBreakers } from '../config/types.ts';
import {
  type BreakerState,
  type BreakerStateEvent,
  breakerChannel,
  type OverflowEvent,
  type OverflowLimit,
  overflowChannel,
} from '../telemetry/channels.ts';
import type { OutcomeClass } from './outlier.ts';
import { MAX_TIMER_MS, uintField } from './settings.ts';

/** The cluster's circuit-breaker settings after defaulting. */
export interface CircuitBreakerSettings {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  readonly maxRetries: number;
  /** 0: the error-rate breaker is off. */
  readonly errorThresholdPercent: number;
  readonly volumeThreshold: number;
  readonly resetTimeoutMs: number;
  readonly windowMs: number;
}

/** Envoy Gateway's circuit-breaking defaults (1024 each; the retry budget bounds retries), opossum-style breaker off. */
export const DEFAULT_CIRCUIT_BREAKERS: CircuitBreakerSettings = {
  maxConnections: 1024,
  maxPendingRequests: 1024,
  maxRequests: 1024,
  maxRetries: 1024,
  errorThresholdPercent: 0,
  volumeThreshold: 20,
  resetTimeoutMs: 10_000,
  windowMs: 10_000,
};

/** Buckets of the breaker's rolling window (opossum's default). */
export const BREAKER_BUCKETS = 10;

/**
 * `circuitBreakers` with defaults. Throws an `Error` naming the field for a value out of range:
 * limits are uint32, errorThresholdPercent 0–100, resetTimeoutMs up to 2^31-1, windowMs 10–2^31-1
 * (it is split into 10 buckets of at least 1 ms).
 */
export function circuitBreakerSettings(cb: CircuitBreakers | undefined): CircuitBreakerSettings {
  const d = DEFAULT_CIRCUIT_BREAKERS;
  const n = 'circuitBreakers';
  return {
    maxConnections: uintField(cb, n, 'maxConnections', d.maxConnections),
    maxPendingRequests: uintField(cb, n, 'maxPendingRequests', d.maxPendingRequests),
    maxRequests: uintField(cb, n, 'maxRequests', d.maxRequests),
    maxRetries: uintField(cb, n, 'maxRetries', d.maxRetries),
    errorThresholdPercent: uintField(cb, n, 'errorThresholdPercent', 0, 1, 100),
    volumeThreshold: uintField(cb, n, 'volumeThreshold', d.volumeThreshold),
    resetTimeoutMs: uintField(cb, n, 'resetTimeoutMs', d.resetTimeoutMs, 1, MAX_TIMER_MS),
    windowMs: uintField(cb, n, 'windowMs', d.windowMs, BREAKER_BUCKETS, MAX_TIMER_MS),
  };
}

/** Envoy's pool limits for one cluster: counters checked on admission (see the module header). */
export class PoolLimits {
  /** Pre-made channel messages, one per limit: publishing an overflow allocates nothing. */
  readonly #events: Readonly<Record<OverflowLimit, OverflowEvent>>;
  #settings: CircuitBreakerSettings = DEFAULT_CIRCUIT_BREAKERS;
  #capacity = Number.POSITIVE_INFINITY;
  #active = 0;
  #retries = 0;

  constructor(cluster: string) {
    this.#events = {
      max_requests: { cluster, limit: 'max_requests' },
      max_pending_requests: { cluster, limit: 'max_pending_requests' },
      max_retries: { cluster, limit: 'max_retries' },
    };
  }

  /** Takes new limits; counts in flight are kept (a lower limit refuses new work until they drain). */
  configure(settings: CircuitBreakerSettings): void {
    this.#settings = settings;
  }

  /** Connections the routable endpoints' pools may open together (`Infinity`: unlimited). */
  set capacity(connections: number) {
    this.#capacity = connections;
  }

  get capacity(): number {
    return this.#capacity;
  }

  get activeRequests(): number {
    return this.#active;
  }

  /** Active requests beyond the connection capacity: waiting in a pool queue for a connection. */
  get pendingRequests(): number {
    return Math.max(0, this.#active - this.#capacity);
  }

  get activeRetries(): number {
    return this.#retries;
  }

  /**
   * Admits a downstream request (counting it) or names the limit it would exceed (counting nothing,
   * publishing `weft:overflow`).
   */
  admitRequest(): OverflowLimit | undefined {
    const s = this.#settings;
    if (this.#active >= s.maxRequests) return this.#overflow('max_requests');
    if (this.#active + 1 - this.#capacity > s.maxPendingRequests)
      return this.#overflow('max_pending_requests');
    this.#active++;
    return undefined;
  }

  releaseRequest(): void {
    if (this.#active > 0) this.#active--;
  }

  /** Whether one more retry fits under `maxRetries`; publishes `weft:overflow` when it does not. */
  canRetry(): boolean {
    if (this.#retries < this.#settings.maxRetries) return true;
    this.#overflow('max_retries');
    return false;
  }

  /** Counts an admitted retry (after `canRetry` and the retry budget said yes). */
  retryStarted(): void {
    this.#retries++;
  }

  releaseRetry(): void {
    if (this.#retries > 0) this.#retries--;
  }

  #overflow(limit: OverflowLimit): OverflowLimit {
    if (overflowChannel.hasSubscribers) overflowChannel.publish(this.#events[limit]);
    return limit;
  }
}

/** opossum's action: the outcome is already known, so it only settles the way the attempt went. */
const SUCCEEDED: Promise<void> = Promise.resolve();
const FAILED_ERROR = new Error('upstream attempt failed');
const FAILED: Promise<void> = Promise.reject(FAILED_ERROR);
FAILED.catch(() => undefined);
const settle = (failed: boolean): Promise<void> => (failed ? FAILED : SUCCEEDED);
const ignore = (): undefined => undefined;

/** One endpoint's opossum breaker and its half-open probe. */
class EndpointBreaker {
  readonly key: string;
  readonly breaker: CircuitBreaker<[boolean], void>;
  /** HALF_OPEN and the probe was handed out (by `picked`): not pickable until its verdict. */
  probeTaken = false;
  /** Hands the probe out again if its verdict never comes. */
  probeTimer: NodeJS.Timeout | undefined;
  /** Counted in `BreakerSet`'s half-open total. */
  countedHalfOpen = false;

  constructor(key: string, breaker: CircuitBreaker<[boolean], void>) {
    this.key = key;
    this.breaker = breaker;
  }

  get state(): BreakerState {
    const b = this.breaker;
    return b.opened ? 'OPEN' : b.halfOpen ? 'HALF_OPEN' : 'CLOSED';
  }

  /** May be picked now: CLOSED, or HALF_OPEN with the probe still to hand out. */
  get available(): boolean {
    const b = this.breaker;
    return b.closed || (b.halfOpen && !this.probeTaken);
  }
}

/**
 * The error-rate breakers of one cluster's endpoints, keyed by endpoint key. `onChange` runs after any
 * change of which endpoints are available (a state change, a probe handed out or returned), so the
 * cluster can rebuild its balancer.
 */
export class BreakerSet {
  readonly #cluster: string;
  readonly #onChange: () => void;
  readonly #breakers = new Map<string, EndpointBreaker>();
  /** Rotates every breaker's rolling-window bucket: one timer per cluster instead of one per breaker. */
  readonly #rotate = new EventEmitter();
  #interval: NodeJS.Timeout | undefined;
  #settings: CircuitBreakerSettings = DEFAULT_CIRCUIT_BREAKERS;
  /** Breakers now HALF_OPEN: while 0, `picked` does nothing. */
  #halfOpen = 0;

  constructor(cluster: string, onChange: () => void) {
    this.#cluster = cluster;
    this.#onChange = onChange;
    this.#rotate.setMaxListeners(0);
  }

  /** True when the error-rate breaker is configured (errorThresholdPercent > 0). */
  get enabled(): boolean {
    return this.#settings.errorThresholdPercent > 0;
  }

  /**
   * Takes new settings and the cluster's current endpoint keys: breakers of removed keys are shut down,
   * new keys get a CLOSED breaker, and all breakers are remade (CLOSED) when the breaker settings
   * changed. Does not call `onChange`; the caller rebuilds.
   */
  sync(settings: CircuitBreakerSettings, keys: readonly string[]): void {
    const changed =
      settings.errorThresholdPercent !== this.#settings.errorThresholdPercent ||
      settings.volumeThreshold !== this.#settings.volumeThreshold ||
      settings.resetTimeoutMs !== this.#settings.resetTimeoutMs ||
      settings.windowMs !== this.#settings.windowMs;
    this.#settings = settings;
    const wanted = new Set(this.enabled ? keys : []);
    for (const [key, eb] of this.#breakers) {
      if (changed || !wanted.has(key)) this.#remove(eb, !wanted.has(key));
    }
    if (changed) this.#stopTimer();
    for (const key of wanted) if (!this.#breakers.has(key)) this.#add(key);
    if (this.#breakers.size > 0 && this.#interval === undefined) {
      this.#interval = setInterval(() => this.#rotate.emit('rotate'), settings.windowMs / BREAKER_BUCKETS);
      this.#interval.unref();
    } else if (this.#breakers.size === 0) {
      this.#stopTimer();
    }
  }

  /** The breaker state of `key`, or undefined without a breaker. */
  state(key: string): BreakerState | undefined {
    return this.#breakers.get(key)?.state;
  }

  /** Whether `key` may be picked now (always true without a breaker). */
  available(key: string): boolean {
    const eb = this.#breakers.get(key);
    return eb === undefined || eb.available;
  }

  /** The balancer returned `key`: if its breaker is HALF_OPEN, this request is the probe. */
  picked(key: string): void {
    if (this.#halfOpen === 0) return;
    const eb = this.#breakers.get(key);
    if (eb === undefined || !eb.breaker.halfOpen || eb.probeTaken) return;
    eb.probeTaken = true;
    eb.probeTimer = setTimeout(() => this.#returnProbe(eb), this.#settings.resetTimeoutMs);
    eb.probeTimer.unref();
    this.#onChange();
  }

  /**
   * Feeds one attempt's outcome on `key` to its breaker. Outcomes arriving while the breaker is OPEN
   * (attempts sent before it opened) are dropped, as opossum would reject them; an `ignored` outcome
   * counts for nothing but hands a taken probe out again.
   */
  record(key: string, outcome: OutcomeClass): void {
    const eb = this.#breakers.get(key);
    if (eb === undefined) return;
    if (outcome === 'ignored') {
      if (eb.probeTaken) this.#returnProbe(eb);
      return;
    }
    const b = eb.breaker;
    if (!b.closed && !b.pendingClose) return; // OPEN, or HALF_OPEN with the verdict already pending
    b.fire(outcome !== 'success').catch(ignore);
  }

  /** Shuts every breaker down (publishing REMOVED) and stops the rotation timer. */
  close(): void {
    for (const eb of this.#breakers.values()) this.#remove(eb, true);
    this.#stopTimer();
  }

  #add(key: string): void {
    const s = this.#settings;
    const breaker = new CircuitBreaker<[boolean], void>(settle, {
      name: `${this.#cluster}/${key}`,
      timeout: false,
      errorThresholdPercentage: s.errorThresholdPercent,
      volumeThreshold: s.volumeThreshold,
      resetTimeout: s.resetTimeoutMs,
      rollingCountTimeout: s.windowMs,
      rollingCountBuckets: BREAKER_BUCKETS,
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
      rotateBucketController: this.#rotate,
    });
    const eb = new EndpointBreaker(key, breaker);
    breaker.on('open', () => this.#changed(eb, 'OPEN'));
    breaker.on('halfOpen', () => this.#changed(eb, 'HALF_OPEN'));
    breaker.on('close', () => this.#changed(eb, 'CLOSED'));
    this.#breakers.set(key, eb);
    this.#publish(key, 'CLOSED');
  }

  #changed(eb: EndpointBreaker, state: BreakerState): void {
    if (state === 'HALF_OPEN') {
      if (!eb.countedHalfOpen) this.#halfOpen++;
      eb.countedHalfOpen = true;
    } else {
      if (eb.countedHalfOpen) this.#halfOpen--;
      eb.countedHalfOpen = false;
      this.#clearProbe(eb);
    }
    this.#publish(eb.key, state);
    this.#onChange();
  }

  #clearProbe(eb: EndpointBreaker): void {
    eb.probeTaken = false;
    if (eb.probeTimer !== undefined) clearTimeout(eb.probeTimer);
    eb.probeTimer = undefined;
  }

  #returnProbe(eb: EndpointBreaker): void {
    this.#clearProbe(eb);
    this.#onChange();
  }

  #remove(eb: EndpointBreaker, publish: boolean): void {
    this.#clearProbe(eb);
    if (eb.countedHalfOpen) this.#halfOpen--;
    eb.countedHalfOpen = false;
    eb.breaker.removeAllListeners('open');
    eb.breaker.removeAllListeners('halfOpen');
    eb.breaker.removeAllListeners('close');
    eb.breaker.shutdown();
    this.#breakers.delete(eb.key);
    if (publish) this.#publish(eb.key, 'REMOVED');
  }

  #stopTimer(): void {
    if (this.#interval !== undefined) clearInterval(this.#interval);
    this.#interval = undefined;
  }

  #publish(endpoint: string, state: BreakerStateEvent['state']): void {
    if (breakerChannel.hasSubscribers) {
      breakerChannel.publish({ cluster: this.#cluster, endpoint, state } satisfies BreakerStateEvent);
    }
  }
}
