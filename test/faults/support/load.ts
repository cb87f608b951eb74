/**
 * Open-loop load at a fixed rate for the fault scenarios: every `tickMs` the generator sends the
 * requests whose time has come (rate × elapsed), whatever the replies are doing, through one
 * undici Agent (keep-alive, at most `connections` sockets). A request counts as ok when
 * `ok(status)` (default: 200); anything else, including socket errors and timeouts, is a failure
 * with its cause tallied. Figures: sent, ok, failed, statuses, errors, latency p50/p99/max (ms).
 *
 * Invariant: `stop()` stops scheduling, waits for every request in flight, closes the agent and
 * returns the figures; nothing keeps running after it.
 */
import { performance } from 'node:perf_hooks';
import { Agent, request } from 'undici';

export interface LoadOptions {
  /** `http://127.0.0.1:<port>` of the listener under load. */
  readonly url: string;
  /** Host header (default: the URL's authority). */
  readonly host?: string;
  /** Request path (default `/`). */
  readonly path?: string;
  /** Requests per second. */
  readonly ratePerSec: number;
  /** Scheduler tick in ms (default 10). */
  readonly tickMs?: number;
  /** Sockets to the listener (default 16). */
  readonly connections?: number;
  /** Whole-reply deadline per request in ms (default 10 000). */
  readonly timeoutMs?: number;
  /** Which statuses are a success (default: 200 only). */
  readonly ok?: (status: number) => boolean;
}

/** One failed request: when (ms since start), and its status (0 for a socket error) or error. */
export interface Failure {
  readonly atMs: number;
  readonly status: number;
  readonly error?: string;
}

/** The figures of a load run, printable as one JSON line. */
export interface LoadFigures {
  readonly durationS: number;
  readonly sent: number;
  readonly ok: number;
  readonly failed: number;
  readonly statuses: Record<string, number>;
  readonly errors: Record<string, number>;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

const round = (n: number): number => Math.round(n * 10) / 10;

export class FixedRateLoad {
  readonly #options: LoadOptions;
  readonly #agent: Agent;
  readonly #latencies: number[] = [];
  readonly #statuses: Record<string, number> = {};
  readonly #errors: Record<string, number> = {};
  /** The first 50 failures, for failure messages. */
  readonly failures: Failure[] = [];
  #startedAt = 0;
  #stoppedAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #sent = 0;
  #ok = 0;
  #failed = 0;
  readonly #inflight = new Set<Promise<void>>();
  #stopped: Promise<LoadFigures> | undefined;

  constructor(options: LoadOptions) {
    this.#options = options;
    this.#agent = new Agent({ connections: options.connections ?? 16, keepAliveTimeout: 4000 });
  }

  /** Starts sending; returns this. */
  start(): this {
    this.#startedAt = performance.now();
    this.#timer = setInterval(() => this.#tick(), this.#options.tickMs ?? 10);
    return this;
  }

  /** Requests sent so far. */
  get sent(): number {
    return this.#sent;
  }

  /** Failures so far. */
  get failed(): number {
    return this.#failed;
  }

  #tick(): void {
    const due = Math.floor(((performance.now() - this.#startedAt) / 1000) * this.#options.ratePerSec);
    while (this.#sent < due) {
      this.#sent++;
      const p = this.#one().finally(() => this.#inflight.delete(p));
      this.#inflight.add(p);
    }
  }

  async #one(): Promise<void> {
    const started = performance.now();
    const timeoutMs = this.#options.timeoutMs ?? 10_000;
    const ok = this.#options.ok ?? ((s: number) => s === 200);
    try {
      const res = await request(`${this.#options.url}${this.#options.path ?? '/'}`, {
        dispatcher: this.#agent,
        ...(this.#options.host !== undefined && { headers: { host: this.#options.host } }),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      await res.body.dump();
      this.#statuses[res.statusCode] = (this.#statuses[res.statusCode] ?? 0) + 1;
      if (ok(res.statusCode)) this.#ok++;
      else this.#fail(started, res.statusCode, `HTTP ${res.statusCode} ${res.headers['x-weft-error'] ?? ''}`);
    } catch (err) {
      const code = (err as { code?: string }).code ?? (err as Error).name;
      this.#errors[code] = (this.#errors[code] ?? 0) + 1;
      this.#fail(started, 0, `${code}: ${(err as Error).message}`);
    }
    this.#latencies.push(performance.now() - started);
  }

  #fail(started: number, status: number, error: string): void {
    this.#failed++;
    if (this.failures.length < 50) {
      this.failures.push({ atMs: Math.round(started - this.#startedAt), status, error });
    }
  }

  /** The figures so far (or of the whole run after `stop`). */
  figures(): LoadFigures {
    const sorted = [...this.#latencies].sort((a, b) => a - b);
    const end = this.#stoppedAt || performance.now();
    return {
      durationS: round((end - this.#startedAt) / 1000),
      sent: this.#sent,
      ok: this.#ok,
      failed: this.#failed,
      statuses: { ...this.#statuses },
      errors: { ...this.#errors },
      p50Ms: round(quantile(sorted, 0.5)),
      p99Ms: round(quantile(sorted, 0.99)),
      maxMs: round(sorted.at(-1) ?? 0),
    };
  }

  /** Stops scheduling, waits for the requests in flight, closes the agent; the run's figures (idempotent). */
  stop(): Promise<LoadFigures> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async #stop(): Promise<LoadFigures> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#stoppedAt = performance.now();
    await Promise.all([...this.#inflight]);
    await this.#agent.close();
    return this.figures();
  }
}
