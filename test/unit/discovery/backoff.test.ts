import { describe, expect, it } from 'vitest';
import { Backoff, backoffDelayMs, DEFAULT_BACKOFF } from '../../../sidecar/agent/backoff.ts';

describe('reconnect backoff', () => {
  it.each([
    [0, 100],
    [1, 200],
    [2, 400],
    [5, 3200],
    [6, 5000],
    [40, 5000],
  ])('attempt %i without jitter waits %i ms (100 ms doubling, capped at 5 s)', (attempt, expected) => {
    expect(backoffDelayMs(attempt, DEFAULT_BACKOFF, () => 0.5)).toBe(expected);
  });

  it('jitters by at most ±20 %', () => {
    expect(backoffDelayMs(3, DEFAULT_BACKOFF, () => 0)).toBe(640);
    expect(backoffDelayMs(3, DEFAULT_BACKOFF, () => 0.999999)).toBe(960);
    for (let i = 0; i < 200; i++) {
      const d = backoffDelayMs(2, DEFAULT_BACKOFF);
      expect(d).toBeGreaterThanOrEqual(320);
      expect(d).toBeLessThanOrEqual(480);
    }
  });

  it('grows with each retry and starts over after reset', () => {
    const b = new Backoff({}, () => 0.5);
    expect([b.next(), b.next(), b.next()]).toEqual([100, 200, 400]);
    b.reset();
    expect(b.next()).toBe(100);
  });
});
