/**
 * The retry budget of one cluster, as Linkerd (and Finagle before it) does it: retries may add at most
 * `percent` % of the recent request load, plus a floor of `minRetriesPerSecond` so that a quiet
 * service can still retry. Envoy-based meshes only cap *concurrent* retries (`maxRetries`, see
 * breakers.ts); the budget caps the *ratio*, which is what stops a retry storm.
 *
 * Over a sliding window of `windowMs` (10 buckets of `windowMs / 10`):
 *
 *     retries admitted  ≤  percent / 100 × requests admitted  +  minRetriesPerSecond × windowMs / 1000
 *
 * A retry is admitted (and counted) when the forwarder decides to retry, before its backoff, so a retry
 * waiting in backoff already holds its share of the budget. Requests are counted when the cluster
 * admits them (a request refused by a pool limit is not). Over budget → the retry is not made, and the
 * forwarder counts it (`weft_retries_skipped_total{reason="budget_exhausted"}`).
 *
 * Invariants: O(1) and allocation-free per request and per retry (running totals over a ring of
 * bucket counters; buckets that fell out of the window are cleared lazily when time moves on); the
 * clock is `Date.now` unless injected, and a clock that steps back is treated as standing still.
 */
import type { RetryBudget as RetryBudgetConfig } from '../config/types.ts';
import { MAX_TIMER_MS, uintField } from './settings.ts';

/** The cluster's retry budget after defaulting. */
export interface RetryBudgetSettings {
  /** Retries allowed as a percentage of requests (Linkerd's retry ratio × 100). */
  readonly percent: number;
  readonly minRetriesPerSecond: number;
  readonly windowMs: number;
}

/** Linkerd's defaults: 20 % extra load, 10 retries per second, a 10 s window. */
export const DEFAULT_RETRY_BUDGET: RetryBudgetSettings = {
  percent: 20,
  minRetriesPerSecond: 10,
  windowMs: 10_000,
};

/** Buckets of the sliding window. */
export const BUDGET_BUCKETS = 10;

/**
 * `retryBudget` with defaults. Throws an `Error` naming the field for a value out of range: percent
 * 1–1000 (0 = default), minRetriesPerSecond a uint32, windowMs 10–2^31-1.
 */
export function retryBudgetSettings(rb: RetryBudgetConfig | undefined): RetryBudgetSettings {
  const d = DEFAULT_RETRY_BUDGET;
  return {
    percent: uintField(rb, 'retryBudget', 'percent', d.percent, 1, 1000),
    minRetriesPerSecond: uintField(rb, 'retryBudget', 'minRetriesPerSecond', d.minRetriesPerSecond),
    windowMs: uintField(rb, 'retryBudget', 'windowMs', d.windowMs, BUDGET_BUCKETS, MAX_TIMER_MS),
  };
}

/** A snapshot of the budget for `/config_dump`. */
export interface RetryBudgetSnapshot {
  readonly requests: number;
  readonly retries: number;
  /** Retries the window allows in total now (`percent` of requests plus the floor). */
  readonly allowance: number;
}

/** One cluster's sliding-window retry budget. */
export class RetryBudget {
  readonly #now: () => number;
  readonly #requests = new Float64Array(BUDGET_BUCKETS);
  readonly #retries = new Float64Array(BUDGET_BUCKETS);
  #settings: RetryBudgetSettings = DEFAULT_RETRY_BUDGET;
  #bucketMs = DEFAULT_RETRY_BUDGET.windowMs / BUDGET_BUCKETS;
  #floor = 0;
  /** Absolute bucket number (`⌊now / bucketMs⌋`) of the newest bucket. */
  #epoch = 0;
  #totalRequests = 0;
  #totalRetries = 0;

  constructor(settings: RetryBudgetSettings = DEFAULT_RETRY_BUDGET, now: () => number = () => Date.now()) {
    this.#now = now;
    this.configure(settings);
  }

  /** Takes new settings; a new window length starts the window afresh. */
  configure(settings: RetryBudgetSettings): void {
    const fresh = settings.windowMs !== this.#settings.windowMs || this.#epoch === 0;
    this.#settings = settings;
    this.#floor = (settings.minRetriesPerSecond * settings.windowMs) / 1000;
    if (fresh) {
      this.#bucketMs = settings.windowMs / BUDGET_BUCKETS;
      this.#requests.fill(0);
      this.#retries.fill(0);
      this.#totalRequests = 0;
      this.#totalRetries = 0;
      this.#epoch = Math.floor(this.#now() / this.#bucketMs);
    }
  }

  /** Counts one admitted request. */
  recordRequest(): void {
    const i = this.#advance();
    this.#requests[i]! += 1;
    this.#totalRequests += 1;
  }

  /** Admits (and counts) one retry if the window's budget has room for it. */
  tryWithdraw(): boolean {
    const i = this.#advance();
    if (this.#totalRetries + 1 > this.#allowance()) return false;
    this.#retries[i]! += 1;
    this.#totalRetries += 1;
    return true;
  }

  snapshot(): RetryBudgetSnapshot {
    this.#advance();
    return { requests: this.#totalRequests, retries: this.#totalRetries, allowance: this.#allowance() };
  }

  #allowance(): number {
    return (this.#settings.percent / 100) * this.#totalRequests + this.#floor;
  }

  /** Moves the window to now, clearing the buckets it passed; returns the current bucket's index. */
  #advance(): number {
    const epoch = Math.floor(this.#now() / this.#bucketMs);
    if (epoch > this.#epoch) {
      const steps = Math.min(epoch - this.#epoch, BUDGET_BUCKETS);
      for (let k = 1; k <= steps; k++) {
        const j = (this.#epoch + k) % BUDGET_BUCKETS;
        this.#totalRequests -= this.#requests[j]!;
        this.#totalRetries -= this.#retries[j]!;
        this.#requests[j] = 0;
        this.#retries[j] = 0;
      }
      this.#epoch = epoch;
    }
    return this.#epoch % BUDGET_BUCKETS;
  }
}
