/**
 * The Linkerd-style retry budget (upstream/budget.ts): retries admitted over the sliding window stay
 * within percent × requests admitted + minRetriesPerSecond × window seconds; a retry counts from its
 * admission (so one waiting in backoff holds its share); the window slides bucket by bucket. Also the
 * cluster's `admitRetry`, which checks maxRetries first and says which limit refused.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RetryBudget } from '../../../sidecar/proxy/upstream/budget.ts';
import { type Harness, harness } from './resilience-helpers.ts';

/** Retries `budget` admits in a row right now (at most `limit`). */
function drain(budget: { tryWithdraw(): boolean } | { admitRetry(): boolean }, limit = 10_000): number {
  let n = 0;
  const take = 'tryWithdraw' in budget ? () => budget.tryWithdraw() : () => budget.admitRetry();
  while (n < limit && take()) n++;
  return n;
}

describe('RetryBudget', () => {
  let now = 1_000_000;
  const clock = () => now;
  beforeEach(() => {
    now = 1_000_000;
  });

  it('allows only the floor (minRetriesPerSecond × window seconds) without requests', () => {
    const b = new RetryBudget({ percent: 20, minRetriesPerSecond: 1, windowMs: 10_000 }, clock);
    expect(drain(b)).toBe(10);
    expect(b.snapshot()).toEqual({ requests: 0, retries: 10, allowance: 10 });
  });

  it('adds percent of the requests admitted in the window', () => {
    const b = new RetryBudget({ percent: 20, minRetriesPerSecond: 1, windowMs: 10_000 }, clock);
    for (let i = 0; i < 100; i++) b.recordRequest();
    expect(drain(b)).toBe(30); // 20 % of 100 + 10
    for (let i = 0; i < 5; i++) b.recordRequest();
    expect(drain(b)).toBe(1); // 20 % of 105 = 21 (+ 10) → one more
  });

  it('rounds nothing up: a fraction of a retry is not a retry', () => {
    const b = new RetryBudget({ percent: 25, minRetriesPerSecond: 1, windowMs: 1000 }, clock);
    for (let i = 0; i < 7; i++) b.recordRequest(); // 1.75 + 1
    expect(drain(b)).toBe(2);
  });

  it('slides: requests and retries older than the window stop counting, bucket by bucket', () => {
    const b = new RetryBudget({ percent: 50, minRetriesPerSecond: 1, windowMs: 10_000 }, clock);
    for (let i = 0; i < 20; i++) b.recordRequest(); // t = 0 s: allowance 10 + 10
    expect(drain(b)).toBe(20);
    now += 5000;
    for (let i = 0; i < 10; i++) b.recordRequest(); // t = 5 s: allowance 15 + 10
    expect(drain(b)).toBe(5);
    now += 5000; // t = 10 s: the first bucket (20 requests, 20 retries) left the window
    expect(b.snapshot()).toEqual({ requests: 10, retries: 5, allowance: 15 });
    expect(drain(b)).toBe(10);
    now += 60_000; // everything left
    expect(b.snapshot()).toEqual({ requests: 0, retries: 0, allowance: 10 });
  });

  it('treats a clock that steps back as standing still', () => {
    const b = new RetryBudget({ percent: 20, minRetriesPerSecond: 1, windowMs: 1000 }, clock);
    expect(drain(b)).toBe(1);
    now -= 5000;
    expect(drain(b)).toBe(0);
    now += 6000;
    expect(drain(b)).toBe(1);
  });

  it('starts afresh when the window length changes, and keeps counting when only the ratio does', () => {
    const b = new RetryBudget({ percent: 20, minRetriesPerSecond: 1, windowMs: 10_000 }, clock);
    for (let i = 0; i < 100; i++) b.recordRequest();
    b.configure({ percent: 50, minRetriesPerSecond: 1, windowMs: 10_000 });
    expect(b.snapshot()).toEqual({ requests: 100, retries: 0, allowance: 60 });
    b.configure({ percent: 50, minRetriesPerSecond: 1, windowMs: 5000 });
    expect(b.snapshot()).toEqual({ requests: 0, retries: 0, allowance: 5 });
  });
});

describe('the cluster retry budget', () => {
  let h: Harness;
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(async () => {
    await h.manager.close();
    vi.useRealTimers();
  });

  it('counts admitted requests only, and a retry in backoff already holds its share', () => {
    h = harness(
      {
        retryBudget: { percent: 10, minRetriesPerSecond: 1, windowMs: 1000 },
        circuitBreakers: { maxRequests: 20, maxRetries: 100 },
      },
      1,
    );
    const c = h.cluster;
    for (let i = 0; i < 30; i++) c.admitRequest(); // 20 admitted, 10 refused (OVERFLOW)
    expect(c.snapshot().retryBudget).toEqual({ requests: 20, retries: 0, allowance: 3 });
    expect(c.admitRetry()).toBe(true); // now waiting in backoff, not yet sent
    expect(c.admitRetry()).toBe(true);
    expect(c.admitRetry()).toBe(true);
    expect(c.admitRetry()).toBe(false);
    expect(c.lastRetryDenial).toBe('BUDGET_EXHAUSTED');
    c.releaseRetry(); // a retry ending does not give its share back
    expect(c.admitRetry()).toBe(false);
    vi.advanceTimersByTime(1000); // the window moved on
    expect(c.admitRetry()).toBe(true);
  });

  it('applies Linkerd defaults (20 %, 10/s over 10 s) without any retryBudget config', () => {
    h = harness({ circuitBreakers: { maxRetries: 10_000 } }, 1);
    for (let i = 0; i < 500; i++) h.cluster.admitRequest();
    expect(drain(h.cluster)).toBe(200); // 100 + 100
    expect(h.cluster.lastRetryDenial).toBe('BUDGET_EXHAUSTED');
    expect(h.cluster.snapshot().retryBudget).toBeUndefined(); // not configured: not dumped
  });

  it('checks maxRetries before the budget: a retry refused for overflow costs no budget', () => {
    h = harness(
      { retryBudget: { minRetriesPerSecond: 2, windowMs: 1000 }, circuitBreakers: { maxRetries: 1 } },
      1,
    );
    const c = h.cluster;
    expect(c.admitRetry()).toBe(true);
    expect(c.admitRetry()).toBe(false);
    expect(c.lastRetryDenial).toBe('OVERFLOW');
    c.releaseRetry();
    expect(c.admitRetry()).toBe(true); // the second share of 2
    c.releaseRetry();
    expect(c.admitRetry()).toBe(false);
    expect(c.lastRetryDenial).toBe('BUDGET_EXHAUSTED');
  });
});
