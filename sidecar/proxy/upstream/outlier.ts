/**
 * Outlier detection for one cluster (passive health), following Envoy's outlier detection:
 *
 * - **Consecutive errors.** Every attempt's outcome is recorded per endpoint. `consecutiveServerErrors`
 *   5xx in a row (Envoy `consecutive_5xx`; connect failures, resets and timeouts count as 5xx, as in
 *   Envoy's default, non-split mode) or `consecutiveGatewayErrors` gateway errors in a row (502, 503,
 *   504, connect failure, reset, timeout; Envoy `consecutive_gateway_failure`) eject the endpoint. Any
 *   response below 500 resets both counts; a non-gateway 5xx (500, 501, …) resets the gateway count.
 *   0 turns either check off. The counts restart after every ejection attempt.
 * - **Success rate.** Every `intervalMs`, the endpoints with at least `successRateRequestVolume`
 *   attempts in the interval are compared, provided there are at least `successRateMinimumHosts` of
 *   them: those whose success rate is below `mean − stdev × successRateStdevFactor / 1000` (population
 *   standard deviation, Envoy's unit) are ejected. The interval's counts then restart.
 * - **Ejection time** is `baseEjectionTimeMs × ejections` (the endpoint's ejection count, this one
 *   included), at most `max(baseEjectionTimeMs, 300 s)` (Envoy's `max_ejection_time` default). The
 *   endpoint returns exactly when it runs out (its own timer), with fresh counts. The count decays: at
 *   every interval tick an endpoint that is not ejected loses one ejection (Envoy: "if the host is
 *   healthy during that check, the ejection time multiplier is decremented").
 * - **Max ejection percent.** An ejection is refused when it would take the ejected share of the
 *   cluster's endpoints above `maxEjectionPercent` — except that one endpoint may always be ejected
 *   (Envoy: "defaults to 10 % but will eject at least one host regardless of the value"). In a cluster
 *   of three, the default 10 % thus allows exactly one ejection. A lone endpoint can be ejected too;
 *   the panic threshold (cluster-manager.ts) then sends traffic to it anyway.
 *
 * Ejections and returns are published on `weft:outlier` (`weft_outlier_ejections_total{cluster,
 * reason}`) and reported through `onChange` so the cluster rebuilds its balancer.
 *
 * Invariants: `record` allocates nothing; an endpoint is ejected at most once at a time; timers are
 * unref'd and all stop on `sync(undefined, …)` or `close()`; removed endpoints forget their state.
 */
import type { OutlierDetection } from '../config/types.ts';
import { type EjectionReason, type OutlierEvent, outlierChannel } from '../telemetry/channels.ts';
import { MAX_TIMER_MS, uintField } from './settings.ts';
import type { AttemptOutcome } from './types.ts';

/** How an attempt counts for passive health: success, 5xx, gateway error (also a 5xx), or not at all. */
export type OutcomeClass = 'success' | 'server_error' | 'gateway_error' | 'ignored';

/**
 * Classifies an attempt's outcome. Responses: 502/503/504 gateway errors, other ≥ 500 server errors,
 * the rest successes. Local errors: connect failure, reset, protocol error and timeouts are gateway
 * errors (the endpoint did not answer properly); anything else (the client leaving, a local refusal)
 * says nothing about the endpoint.
 */
export function classifyOutcome(outcome: AttemptOutcome): OutcomeClass {
  if (outcome.kind === 'response') {
    const s = outcome.status;
    if (s < 500) return 'success';
    return s === 502 || s === 503 || s === 504 ? 'gateway_error' : 'server_error';
  }
  switch (outcome.error) {
    case 'UPSTREAM_CONNECT_FAILURE':
    case 'UPSTREAM_RESET':
    case 'UPSTREAM_PROTOCOL_ERROR':
    case 'UPSTREAM_TIMEOUT':
    case 'REQUEST_TIMEOUT':
      return 'gateway_error';
    default:
      return 'ignored';
  }
}

/** The cluster's outlier detection after defaulting. */
export interface OutlierSettings {
  /** 0: off. */
  readonly consecutiveServerErrors: number;
  /** 0: off. */
  readonly consecutiveGatewayErrors: number;
  readonly intervalMs: number;
  readonly baseEjectionTimeMs: number;
  readonly maxEjectionPercent: number;
  readonly successRateMinimumHosts: number;
  readonly successRateRequestVolume: number;
  /** Standard deviations × 1000 (Envoy's unit: 1900 = 1.9). */
  readonly successRateStdevFactor: number;
}

export const DEFAULT_OUTLIER_DETECTION: OutlierSettings = {
  consecutiveServerErrors: 0,
  consecutiveGatewayErrors: 0,
  intervalMs: 10_000,
  baseEjectionTimeMs: 30_000,
  maxEjectionPercent: 10,
  successRateMinimumHosts: 5,
  successRateRequestVolume: 100,
  successRateStdevFactor: 1900,
};

/** Envoy's `healthy_panic_threshold` default. */
export const DEFAULT_PANIC_THRESHOLD_PERCENT = 50;
/** Envoy's `max_ejection_time` default; longer base ejection times are not cut. */
export const MAX_EJECTION_TIME_MS = 300_000;

/**
 * `outlierDetection` with defaults, or undefined when absent (detection off). Throws an `Error`
 * naming the field for a value out of range: counts uint32, intervalMs 1–2^31-1, baseEjectionTimeMs
 * 1–2^31-1, maxEjectionPercent 1–100, successRateStdevFactor up to 100000, panicThresholdPercent 1–100.
 */
export function outlierSettings(od: OutlierDetection | undefined): OutlierSettings | undefined {
  if (od === undefined) return undefined;
  const d = DEFAULT_OUTLIER_DETECTION;
  const n = 'outlierDetection';
  uintField(od, n, 'panicThresholdPercent', DEFAULT_PANIC_THRESHOLD_PERCENT, 1, 100);
  return {
    consecutiveServerErrors: uintField(od, n, 'consecutiveServerErrors', 0),
    consecutiveGatewayErrors: uintField(od, n, 'consecutiveGatewayErrors', 0),
    intervalMs: uintField(od, n, 'intervalMs', d.intervalMs, 1, MAX_TIMER_MS),
    baseEjectionTimeMs: uintField(od, n, 'baseEjectionTimeMs', d.baseEjectionTimeMs, 1, MAX_TIMER_MS),
    maxEjectionPercent: uintField(od, n, 'maxEjectionPercent', d.maxEjectionPercent, 1, 100),
    successRateMinimumHosts: uintField(od, n, 'successRateMinimumHosts', d.successRateMinimumHosts),
    successRateRequestVolume: uintField(od, n, 'successRateRequestVolume', d.successRateRequestVolume),
    successRateStdevFactor: uintField(od, n, 'successRateStdevFactor', d.successRateStdevFactor, 1, 100_000),
  };
}

/** The panic threshold in percent: `outlierDetection.panicThresholdPercent`, else Envoy's 50. */
export function panicThresholdPercent(od: OutlierDetection | undefined): number {
  return uintField(od, 'outlierDetection', 'panicThresholdPercent', DEFAULT_PANIC_THRESHOLD_PERCENT, 1, 100);
}

/** One endpoint's passive-health state. */
class HostState {
  readonly key: string;
  consecutiveServerErrors = 0;
  consecutiveGatewayErrors = 0;
  /** Epoch ms the ejection ends; 0 when not ejected. */
  ejectedUntilMs = 0;
  ejections = 0;
  reason: EjectionReason = 'consecutive_gateway_errors';
  timer: NodeJS.Timeout | undefined;
  intervalAttempts = 0;
  intervalSuccesses = 0;

  constructor(key: string) {
    this.key = key;
  }
}

/** What `/config_dump` shows of an endpoint's outlier state. */
export interface OutlierHostSnapshot {
  /** ISO time the ejection ends, or null when not ejected. */
  readonly ejectedUntil: string | null;
  readonly ejections: number;
}

/** Outlier detection for one cluster's endpoints, keyed by endpoint key (see the module header). */
export class OutlierDetector {
  readonly #cluster: string;
  readonly #onChange: () => void;
  readonly #now: () => number;
  readonly #hosts = new Map<string, HostState>();
  #settings: OutlierSettings | undefined;
  #interval: NodeJS.Timeout | undefined;
  #ejected = 0;

  constructor(cluster: string, onChange: () => void, now: () => number = () => Date.now()) {
    this.#cluster = cluster;
    this.#onChange = onChange;
    this.#now = now;
  }

  get enabled(): boolean {
    return this.#settings !== undefined;
  }

  /** Endpoints ejected now. */
  get ejectedCount(): number {
    return this.#ejected;
  }

  /**
   * Takes new settings (undefined: detection off, every ejection lifted) and the cluster's endpoint
   * keys: removed keys forget their state, new keys start clean. Kept endpoints keep their state and
   * any running ejection. Does not call `onChange`; the caller rebuilds.
   */
  sync(settings: OutlierSettings | undefined, keys: readonly string[]): void {
    const previous = this.#settings;
    this.#settings = settings;
    const wanted = new Set(settings === undefined ? [] : keys);
    for (const [key, host] of this.#hosts) {
      if (wanted.has(key)) continue;
      this.#lift(host);
      this.#hosts.delete(key);
    }
    for (const key of wanted) if (!this.#hosts.has(key)) this.#hosts.set(key, new HostState(key));
    if (settings === undefined || settings.intervalMs !== previous?.intervalMs) this.#stopInterval();
    if (settings !== undefined && this.#interval === undefined) {
      this.#interval = setInterval(() => this.#tick(), settings.intervalMs);
      this.#interval.unref();
    }
  }

  /** Whether `key` is ejected now. */
  isEjected(key: string): boolean {
    const host = this.#hosts.get(key);
    return host !== undefined && host.ejectedUntilMs !== 0;
  }

  /** `key`'s state for `/config_dump`, or undefined when detection is off or the key unknown. */
  snapshot(key: string): OutlierHostSnapshot | undefined {
    const host = this.#hosts.get(key);
    if (host === undefined) return undefined;
    const until = host.ejectedUntilMs;
    return { ejectedUntil: until === 0 ? null : new Date(until).toISOString(), ejections: host.ejections };
  }

  /** Records one attempt's outcome on `key`; may eject it. */
  record(key: string, outcome: OutcomeClass): void {
    const s = this.#settings;
    if (s === undefined || outcome === 'ignored') return;
    const host = this.#hosts.get(key);
    if (host === undefined || host.ejectedUntilMs !== 0) return;
    host.intervalAttempts++;
    if (outcome === 'success') {
      host.intervalSuccesses++;
      host.consecutiveServerErrors = 0;
      host.consecutiveGatewayErrors = 0;
      return;
    }
    host.consecutiveServerErrors++;
    if (outcome === 'gateway_error') host.consecutiveGatewayErrors++;
    else host.consecutiveGatewayErrors = 0;
    if (s.consecutiveGatewayErrors > 0 && host.consecutiveGatewayErrors >= s.consecutiveGatewayErrors) {
      this.#eject(host, 'consecutive_gateway_errors');
    } else if (s.consecutiveServerErrors > 0 && host.consecutiveServerErrors >= s.consecutiveServerErrors) {
      this.#eject(host, 'consecutive_server_errors');
    }
  }

  /** Lifts every ejection and stops every timer; detection stays off until the next `sync`. */
  close(): void {
    this.sync(undefined, []);
  }

  /** Ejects `host` unless the max ejection percent forbids it; the consecutive counts restart either way. */
  #eject(host: HostState, reason: EjectionReason): boolean {
    const s = this.#settings;
    host.consecutiveServerErrors = 0;
    host.consecutiveGatewayErrors = 0;
    if (s === undefined) return false;
    if (this.#ejected > 0 && (this.#ejected + 1) * 100 > s.maxEjectionPercent * this.#hosts.size)
      return false;
    host.ejections++;
    const durationMs = Math.min(
      s.baseEjectionTimeMs * host.ejections,
      Math.max(s.baseEjectionTimeMs, MAX_EJECTION_TIME_MS),
    );
    host.ejectedUntilMs = this.#now() + durationMs;
    host.reason = reason;
    host.timer = setTimeout(() => this.#return(host), durationMs);
    host.timer.unref();
    this.#ejected++;
    this.#publish(host, true);
    this.#onChange();
    return true;
  }

  /** The ejection of `host` ran out: back in rotation with fresh counts. */
  #return(host: HostState): void {
    if (!this.#lift(host)) return;
    this.#publish(host, false);
    this.#onChange();
  }

  /** Ends `host`'s ejection (if any) without telling anyone; true when it was ejected. */
  #lift(host: HostState): boolean {
    if (host.timer !== undefined) clearTimeout(host.timer);
    host.timer = undefined;
    host.consecutiveServerErrors = 0;
    host.consecutiveGatewayErrors = 0;
    host.intervalAttempts = 0;
    host.intervalSuccesses = 0;
    if (host.ejectedUntilMs === 0) return false;
    host.ejectedUntilMs = 0;
    this.#ejected--;
    return true;
  }

  /** Every `intervalMs`: decay the ejection counts, run success-rate detection, restart the counts. */
  #tick(): void {
    const s = this.#settings;
    if (s === undefined) return;
    for (const host of this.#hosts.values()) {
      if (host.ejectedUntilMs === 0 && host.ejections > 0) host.ejections--;
    }
    let n = 0;
    let sum = 0;
    for (const host of this.#hosts.values()) {
      if (host.ejectedUntilMs !== 0 || host.intervalAttempts < s.successRateRequestVolume) continue;
      n++;
      sum += (100 * host.intervalSuccesses) / host.intervalAttempts;
    }
    if (n > 0 && n >= s.successRateMinimumHosts) {
      const mean = sum / n;
      let squares = 0;
      for (const host of this.#hosts.values()) {
        if (host.ejectedUntilMs !== 0 || host.intervalAttempts < s.successRateRequestVolume) continue;
        const rate = (100 * host.intervalSuccesses) / host.intervalAttempts;
        squares += (rate - mean) ** 2;
      }
      const threshold = mean - Math.sqrt(squares / n) * (s.successRateStdevFactor / 1000);
      for (const host of this.#hosts.values()) {
        if (host.ejectedUntilMs !== 0 || host.intervalAttempts < s.successRateRequestVolume) continue;
        if ((100 * host.intervalSuccesses) / host.intervalAttempts < threshold)
          this.#eject(host, 'success_rate');
      }
    }
    for (const host of this.#hosts.values()) {
      host.intervalAttempts = 0;
      host.intervalSuccesses = 0;
    }
  }

  #stopInterval(): void {
    if (this.#interval !== undefined) clearInterval(this.#interval);
    this.#interval = undefined;
  }

  #publish(host: HostState, ejected: boolean): void {
    if (!outlierChannel.hasSubscribers) return;
    outlierChannel.publish({
      cluster: this.#cluster,
      endpoint: host.key,
      ejected,
      reason: host.reason,
      ejectedUntilMs: host.ejectedUntilMs,
      ejections: host.ejections,
    } satisfies OutlierEvent);
  }
}
