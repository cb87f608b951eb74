/**
 * Active health checks for one cluster's endpoints (Envoy's HTTP health checker, reduced to what the
 * config offers): every `intervalMs` (plus up to 10 % jitter) each endpoint gets `GET <path>` on a
 * connection of its own — a one-off undici `Client` (a one-session `H2Pool` for an HTTP/2 endpoint),
 * not the endpoint's pool, sent with `reset: true` and closed afterwards — so checks never queue behind traffic nor hold a pooled connection. A 2xx
 * answer within `timeoutMs` (connect included) is a success; anything else (another status, a connect
 * failure, a reset, no answer in time) a failure.
 *
 * States: an endpoint starts HEALTHY (a config push must not black-hole traffic until the first
 * round of checks; the first check runs within 10 % of the interval), turns UNHEALTHY after
 * `unhealthyThreshold` consecutive failures and HEALTHY again after `healthyThreshold` consecutive
 * successes. An UNHEALTHY endpoint is not picked (subject to the panic threshold, cluster-manager.ts).
 * Changes are reported through `onChange` so the cluster rebuilds its balancer, and every check's
 * result is published on `weft:health-check`.
 *
 * mTLS clusters are checked over mTLS: the check's client uses the endpoint's connector (upstream/
 * tls.ts), so it presents the proxy's certificate and verifies the endpoint's SPIFFE ID like traffic
 * does; a wrong peer fails the check.
 *
 * Invariants: at most one check in flight per endpoint, and the next one is scheduled only after it
 * ended (no overlap, whatever the timeout); every timer is unref'd; `sync` stops the checkers of
 * removed endpoints (aborting a check in flight) and `close()` stops all of them.
 */
import { type buildConnector, Client, type Dispatcher } from 'undici';
import type { HealthCheck } from '../config/types.ts';
import { type HealthCheckEvent, healthCheckChannel } from '../telemetry/channels.ts';
import { H2Pool } from './h2-pool.ts';
import { MAX_TIMER_MS, uintField } from './settings.ts';

/** The cluster's health check after defaulting. */
export interface HealthCheckSettings {
  /** Origin-form request target, e.g. `/healthz`. */
  readonly path: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly healthyThreshold: number;
  readonly unhealthyThreshold: number;
}

export const DEFAULT_HEALTH_CHECK = {
  intervalMs: 5000,
  timeoutMs: 1000,
  healthyThreshold: 1,
  unhealthyThreshold: 3,
} as const;

/** Share of the interval added as random jitter to each wait (and the window of the first check). */
export const HEALTH_CHECK_JITTER = 0.1;

/** RFC 9112 §3.2.1 origin-form: '/' then visible ASCII without '#'; at most 2048 characters. */
const ORIGIN_FORM = /^\/[!-"$-~]*$/;
const MAX_PATH_LENGTH = 2048;

/**
 * `healthCheck` with defaults, or undefined when absent (no active checks). Throws an `Error` naming
 * the field: path must be an origin-form target (`/healthz`, `/ready?deep=1`), the times 1–2^31-1 ms,
 * the thresholds uint32.
 */
export function healthCheckSettings(hc: HealthCheck | undefined): HealthCheckSettings | undefined {
  if (hc === undefined) return undefined;
  const path: unknown = hc.path;
  if (typeof path !== 'string' || path.length > MAX_PATH_LENGTH || !ORIGIN_FORM.test(path)) {
    throw new Error(
      `healthCheck.path must be an origin-form request target such as "/healthz" (at most ${MAX_PATH_LENGTH} characters), got ${JSON.stringify(path)}`,
    );
  }
  const d = DEFAULT_HEALTH_CHECK;
  const n = 'healthCheck';
  return {
    path,
    intervalMs: uintField(hc, n, 'intervalMs', d.intervalMs, 1, MAX_TIMER_MS),
    timeoutMs: uintField(hc, n, 'timeoutMs', d.timeoutMs, 1, MAX_TIMER_MS),
    healthyThreshold: uintField(hc, n, 'healthyThreshold', d.healthyThreshold),
    unhealthyThreshold: uintField(hc, n, 'unhealthyThreshold', d.unhealthyThreshold),
  };
}

/** What a checker needs of an endpoint. */
export interface HealthCheckTarget {
  readonly key: string;
  /** `http://…`, or `https://…` with `connector`. */
  readonly origin: string;
  readonly connector?: buildConnector.connector | undefined;
  /** The endpoint speaks HTTP/2 (h2c, or h2 over `connector`). */
  readonly http2?: boolean;
}

export type HealthCheckState = 'HEALTHY' | 'UNHEALTHY';

const HEADERS = { 'user-agent': 'weft-health-check' } as const;

class TimeoutError extends Error {
  constructor(ms: number) {
    super(`health check timed out after ${ms} ms`);
    this.name = 'HealthCheckTimeoutError';
  }
}

const ignore = (): undefined => undefined;

/** One endpoint's checker: a chain of timers, one check at a time. */
class EndpointChecker {
  target: HealthCheckTarget;
  healthy = true;
  readonly #cluster: string;
  #settings: HealthCheckSettings;
  readonly #random: () => number;
  readonly #onChange: () => void;
  #successes = 0;
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  #client: Dispatcher | undefined;
  #stopped = false;
  /** Bumped by `restart`/`stop`, so a check that was in flight then reports nothing. */
  #generation = 0;

  constructor(
    cluster: string,
    target: HealthCheckTarget,
    settings: HealthCheckSettings,
    random: () => number,
    onChange: () => void,
  ) {
    this.#cluster = cluster;
    this.target = target;
    this.#settings = settings;
    this.#random = random;
    this.#onChange = onChange;
    this.#schedule(this.#jitter());
  }

  /** New settings: the counts restart and a check is scheduled afresh; the health state is kept. */
  restart(settings: HealthCheckSettings): void {
    this.#halt();
    this.#stopped = false;
    this.#settings = settings;
    this.#successes = 0;
    this.#failures = 0;
    this.#schedule(this.#jitter());
  }

  /** Stops for good, aborting a check in flight. */
  stop(): void {
    this.#halt();
    this.#stopped = true;
  }

  #halt(): void {
    this.#generation++;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#client !== undefined) this.#client.destroy().catch(ignore);
    this.#client = undefined;
  }

  #jitter(): number {
    return Math.floor(this.#random() * this.#settings.intervalMs * HEALTH_CHECK_JITTER);
  }

  #schedule(delayMs: number): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#check();
    }, delayMs);
    this.#timer.unref();
  }

  async #check(): Promise<void> {
    const generation = this.#generation;
    const s = this.#settings;
    const { origin, connector, http2 } = this.target;
    const client: Dispatcher =
      http2 === true
        ? new H2Pool({
            origin,
            connector,
            connectTimeoutMs: s.timeoutMs,
            idleTimeoutMs: s.timeoutMs,
            maxSessions: 1,
          })
        : new Client(origin, {
            pipelining: 1,
            connectTimeout: s.timeoutMs,
            headersTimeout: 0,
            bodyTimeout: 0,
            ...(connector !== undefined && { connect: connector }),
          });
    this.#client = client;
    const timer = setTimeout(() => client.destroy(new TimeoutError(s.timeoutMs)).catch(ignore), s.timeoutMs);
    timer.unref();
    let ok = false;
    try {
      const res = await client.request({ path: s.path, method: 'GET', headers: HEADERS, reset: true });
      await res.body.dump();
      ok = res.statusCode >= 200 && res.statusCode < 300;
    } catch {
      ok = false;
    } finally {
      clearTimeout(timer);
      client.destroy().catch(ignore);
      if (this.#client === client) this.#client = undefined;
    }
    if (this.#stopped || generation !== this.#generation) return;
    this.#schedule(s.intervalMs + this.#jitter());
    this.#result(ok);
  }

  #result(ok: boolean): void {
    const s = this.#settings;
    if (ok) {
      this.#failures = 0;
      this.#successes++;
      if (!this.healthy && this.#successes >= s.healthyThreshold) {
        this.healthy = true;
        this.#onChange();
      }
    } else {
      this.#successes = 0;
      this.#failures++;
      if (this.healthy && this.#failures >= s.unhealthyThreshold) {
        this.healthy = false;
        this.#onChange();
      }
    }
    if (healthCheckChannel.hasSubscribers) {
      healthCheckChannel.publish({
        cluster: this.#cluster,
        endpoint: this.target.key,
        ok,
        healthy: this.healthy,
      } satisfies HealthCheckEvent);
    }
  }
}

/** The active health checks of one cluster, keyed by endpoint key. */
export class HealthCheckSet {
  readonly #cluster: string;
  readonly #onChange: () => void;
  readonly #random: () => number;
  readonly #checkers = new Map<string, EndpointChecker>();
  #settings: HealthCheckSettings | undefined;

  /** `random` (in [0, 1)) drives the jitter; `onChange` runs when an endpoint's state flips. */
  constructor(cluster: string, onChange: () => void, random: () => number = Math.random) {
    this.#cluster = cluster;
    this.#onChange = onChange;
    this.#random = random;
  }

  get enabled(): boolean {
    return this.#settings !== undefined;
  }

  /**
   * Takes new settings (undefined: checks off, every endpoint counts as healthy) and the cluster's
   * endpoints: removed ones stop being checked, new ones start HEALTHY with a check within 10 % of the
   * interval, kept ones keep their state (and restart their schedule if the settings changed). Does
   * not call `onChange`; the caller rebuilds.
   */
  sync(settings: HealthCheckSettings | undefined, targets: readonly HealthCheckTarget[]): void {
    const changed = JSON.stringify(settings) !== JSON.stringify(this.#settings);
    this.#settings = settings;
    const wanted = new Map<string, HealthCheckTarget>();
    if (settings !== undefined) for (const t of targets) wanted.set(t.key, t);
    for (const [key, checker] of this.#checkers) {
      const target = wanted.get(key);
      if (target === undefined) {
        checker.stop();
        this.#checkers.delete(key);
      } else {
        checker.target = target;
        if (changed && settings !== undefined) checker.restart(settings);
      }
    }
    if (settings === undefined) return;
    for (const [key, target] of wanted) {
      if (!this.#checkers.has(key)) {
        this.#checkers.set(
          key,
          new EndpointChecker(this.#cluster, target, settings, this.#random, this.#onChange),
        );
      }
    }
  }

  /** Whether `key` passes its health checks (true when it is not checked). */
  isHealthy(key: string): boolean {
    return this.#checkers.get(key)?.healthy ?? true;
  }

  /** `key`'s state for `/config_dump`, or undefined when it is not checked. */
  state(key: string): HealthCheckState | undefined {
    const checker = this.#checkers.get(key);
    if (checker === undefined) return undefined;
    return checker.healthy ? 'HEALTHY' : 'UNHEALTHY';
  }

  /** Stops every checker. */
  close(): void {
    this.sync(undefined, []);
  }
}
