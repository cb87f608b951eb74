/**
 * The counters behind the edge rate limits: rate-limiter-flexible limiters, kept across config
 * versions so that a reload (SIGHUP, a new snapshot) does not reset anyone's count.
 *
 * - Local (default): `RateLimiterMemory`, in this process only.
 * - Global (`RateLimitRule.global`): `RateLimiterRedis` on one ioredis client to the config's
 *   `RateLimitService.redisUrl`; every replica with the same rule shares the same Redis keys, so the
 *   limit holds across replicas. Commands time out after `timeoutMs` (default 100 ms); the client
 *   does not queue commands while disconnected (`enableOfflineQueue: false`) and the limiter rejects
 *   at once when the client is not ready, so a dead Redis costs no latency. Such a failure is a
 *   `StoreFailure` (never a limit): the filter applies the declared fail mode.
 *
 * Windows are rate-limiter-flexible's: fixed, per bucket, starting at the bucket's first request
 * (`requests` per `unit`). Burst: `burst` > 0 wraps the limiter in a `BurstyRateLimiter` with a
 * second pool of `burst` requests per 10 windows, drawn on only once a window's `requests` are
 * spent — so a client idle for a while may exceed the rate by up to `burst` at once (the token
 * bucket's burst), while its long-run rate stays within `requests + burst/10` per unit. A month is
 * 30 days.
 *
 * Store state changes (Redis lost / back) are published on `weft:ratelimit:store` (telemetry.ts
 * logs them and keeps a gauge).
 */
import { Redis } from 'ioredis';
import {
  BurstyRateLimiter,
  type RateLimiterAbstract,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
} from 'rate-limiter-flexible';
import type {
  RateLimitFailMode,
  RateLimitRule,
  RateLimitService,
  RateLimitUnit,
} from '../../../sidecar/proxy/config/types.ts';
import { publishStoreState } from './telemetry.ts';

/** Window length of each unit, in seconds. */
export const UNIT_SECONDS: Readonly<Record<Exclude<RateLimitUnit, 'RATE_LIMIT_UNIT_UNSPECIFIED'>, number>> = {
  PER_SECOND: 1,
  PER_MINUTE: 60,
  PER_HOUR: 3600,
  PER_DAY: 86_400,
  PER_MONTH: 30 * 86_400,
};

export const DEFAULT_STORE_TIMEOUT_MS = 100;
/** The burst pool refills every this many windows (`burst` extra requests per 10 windows). */
export const BURST_WINDOWS = 10;

/** One consume: allowed or limited, with what the RateLimit-* headers report. */
export interface Verdict {
  readonly allowed: boolean;
  /** Requests per window (the rule's `requests`). */
  readonly limit: number;
  /** Requests left in the current window (0 when limited). */
  readonly remaining: number;
  /** Milliseconds until the window resets (and, when limited, until a retry can pass). */
  readonly resetMs: number;
  readonly windowSeconds: number;
}

/** The store could not be asked (global limits with Redis down or slow). */
export interface StoreFailure {
  readonly failed: true;
  readonly reason: string;
}

interface Consumable {
  consume(key: string, points?: number): Promise<RateLimiterRes>;
}

/**
 * A rule's counter, consumed once per request with the request's bucket key. It asks the store for
 * its limiter when the store's Redis client changed (a rule is compiled before the version's store
 * is installed), so global rules count in the store in force.
 */
export class RuleLimiter {
  readonly #rule: RateLimitRule;
  readonly #id: string;
  readonly #windowSeconds: number;
  readonly #store: LimiterStore;
  #generation = -1;
  #limiter: Consumable | undefined;
  #global = false;

  constructor(rule: RateLimitRule, id: string, windowSeconds: number, store: LimiterStore) {
    this.#rule = rule;
    this.#id = id;
    this.#windowSeconds = windowSeconds;
    this.#store = store;
  }

  /** Counts one request against `key`; never rejects. */
  async consume(key: string): Promise<Verdict | StoreFailure> {
    if (this.#generation !== this.#store.generation) {
      this.#generation = this.#store.generation;
      const counter = this.#store.counter(this.#rule, this.#id, this.#windowSeconds);
      this.#limiter = counter.limiter;
      this.#global = counter.global;
    }
    try {
      const res = await (this.#limiter as Consumable).consume(key, 1);
      if (this.#global) this.#store.markUp();
      return this.#verdict(res, true);
    } catch (err) {
      if (err instanceof RateLimiterRes) {
        if (this.#global) this.#store.markUp();
        return this.#verdict(err, false);
      }
      const reason = err instanceof Error ? err.message : String(err);
      this.#store.markDown(reason);
      return { failed: true, reason };
    }
  }

  #verdict(res: RateLimiterRes, allowed: boolean): Verdict {
    return {
      allowed,
      limit: this.#rule.requests,
      remaining: allowed ? Math.max(0, res.remainingPoints) : 0,
      resetMs: Math.max(0, res.msBeforeNext),
      windowSeconds: this.#windowSeconds,
    };
  }
}

/** The limiters of one proxy process, by rule shape; outlives config versions. */
export class LimiterStore {
  readonly #local = new Map<string, Consumable>();
  readonly #global = new Map<string, Consumable>();
  /** Bumped whenever the Redis client changes; rule limiters then look their limiter up again. */
  generation = 0;
  #redis: Redis | undefined;
  #service: RateLimitService | undefined;
  #down = false;

  /** The declared fail mode of global limits (FAIL_OPEN unless the service says FAIL_CLOSED). */
  get failMode(): Exclude<RateLimitFailMode, 'RATE_LIMIT_FAIL_MODE_UNSPECIFIED'> {
    return this.#service?.failMode === 'FAIL_CLOSED' ? 'FAIL_CLOSED' : 'FAIL_OPEN';
  }

  /** Whether global limits can be counted at all (a store is configured). */
  get hasService(): boolean {
    return this.#service !== undefined;
  }

  /**
   * Installs the config's store: a new Redis URL or timeout means a new client (the old one is
   * closed) and new global limiters; the same one keeps both. Absent: global rules count locally.
   */
  configure(service: RateLimitService | undefined): void {
    const same =
      service?.redisUrl === this.#service?.redisUrl && service?.timeoutMs === this.#service?.timeoutMs;
    this.#service = service;
    if (same) return;
    this.generation++;
    this.#global.clear();
    this.#redis?.disconnect();
    this.#redis = undefined;
    this.#down = false;
    if (service === undefined) return;
    const redis = new Redis(service.redisUrl, {
      commandTimeout: service.timeoutMs || DEFAULT_STORE_TIMEOUT_MS,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 1000,
      retryStrategy: (times) => Math.min(50 * times, 1000),
    });
    redis.on('error', (err: Error) => this.markDown(err.message));
    redis.on('ready', () => this.markUp());
    this.#redis = redis;
  }

  /** A rule's counter (shared by every rule of the same name and shape). */
  limiterFor(rule: RateLimitRule): RuleLimiter {
    const windowSeconds = UNIT_SECONDS[rule.unit as keyof typeof UNIT_SECONDS];
    const id = `${rule.name ?? ''}|${rule.requests}|${windowSeconds}|${rule.burst ?? 0}`;
    return new RuleLimiter(rule, id, windowSeconds, this);
  }

  /** @internal The limiter behind a rule in the current store generation. */
  counter(rule: RateLimitRule, id: string, windowSeconds: number): { limiter: Consumable; global: boolean } {
    const global = rule.global === true && this.#redis !== undefined;
    const map = global ? this.#global : this.#local;
    let limiter = map.get(id);
    if (limiter === undefined) {
      const make = (points: number, duration: number, prefix: string): RateLimiterAbstract =>
        global
          ? new RateLimiterRedis({
              storeClient: this.#redis,
              points,
              duration,
              keyPrefix: prefix,
              rejectIfRedisNotReady: true,
            })
          : new RateLimiterMemory({ points, duration, keyPrefix: prefix });
      const prefix = `weft:rl:${id}`;
      const main = make(rule.requests, windowSeconds, prefix);
      const burst = rule.burst ?? 0;
      limiter =
        burst > 0
          ? new BurstyRateLimiter(main, make(burst, windowSeconds * BURST_WINDOWS, `${prefix}:burst`))
          : main;
      map.set(id, limiter);
    }
    return { limiter, global };
  }

  /** @internal A global consume failed, or the client reported an error. */
  markDown(reason: string): void {
    if (this.#down) return;
    this.#down = true;
    publishStoreState({ up: false, reason, failMode: this.failMode });
  }

  /** @internal A global consume succeeded, or the client is ready again. */
  markUp(): void {
    if (!this.#down) return;
    this.#down = false;
    publishStoreState({ up: true, reason: '', failMode: this.failMode });
  }

  /** Closes the Redis client. */
  close(): void {
    this.#redis?.disconnect();
    this.#redis = undefined;
    this.generation++;
    this.#global.clear();
  }
}
