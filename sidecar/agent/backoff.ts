/**
 * Reconnect backoff: exponential with jitter (gRPC's connection-backoff shape). The n-th delay
 * (n = 0, 1, …) is min(initialMs · 2^n, maxMs), scaled by a random factor in [1 − jitter, 1 + jitter]
 * and rounded to whole milliseconds. Defaults: 100 ms doubling to 5 s, ±20 %.
 */

export interface BackoffOptions {
  /** First delay, milliseconds (default 100). */
  readonly initialMs: number;
  /** Cap on the un-jittered delay, milliseconds (default 5000). */
  readonly maxMs: number;
  /** Relative jitter, 0..1 (default 0.2: ±20 %). */
  readonly jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 100, maxMs: 5000, jitter: 0.2 };

/** The delay before retry `attempt` (0-based), milliseconds; `random` returns values in [0, 1). */
export function backoffDelayMs(
  attempt: number,
  options: BackoffOptions = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  const base = Math.min(options.initialMs * 2 ** Math.min(attempt, 30), options.maxMs);
  const factor = 1 + options.jitter * (2 * random() - 1);
  return Math.max(0, Math.round(base * factor));
}

/** Successive backoff delays; `reset` after a connection succeeded. */
export class Backoff {
  readonly #options: BackoffOptions;
  readonly #random: () => number;
  #attempt = 0;

  constructor(options: Partial<BackoffOptions> = {}, random: () => number = Math.random) {
    this.#options = { ...DEFAULT_BACKOFF, ...options };
    this.#random = random;
  }

  /** The next delay, milliseconds; each call doubles the base up to the cap. */
  next(): number {
    return backoffDelayMs(this.#attempt++, this.#options, this.#random);
  }

  reset(): void {
    this.#attempt = 0;
  }
}
