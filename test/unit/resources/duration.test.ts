/**
 * GEP-2257 durations: the pattern `^([0-9]{1,5}(h|m|s|ms)){1,4}$`, read as Go's
 * time.ParseDuration reads it (components summed), and the canonical spelling.
 */
import { describe, expect, it } from 'vitest';
import { formatDurationMs, isDuration, parseDurationMs } from '../../../control-plane/resources/duration.ts';

describe('parseDurationMs', () => {
  it.each([
    ['0s', 0],
    ['0ms', 0],
    ['500ms', 500],
    ['10s', 10_000],
    ['1m', 60_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['1h30m30s500ms', 5_430_500],
    ['01h', 3_600_000],
    ['00060m', 3_600_000],
    ['99999h', 99_999 * 3_600_000],
    ['1s1h', 3_601_000],
  ])('%s is %d ms', (s, ms) => {
    expect(isDuration(s)).toBe(true);
    expect(parseDurationMs(s)).toBe(ms);
  });

  it.each([
    ['', 'empty'],
    ['10', 'no unit'],
    ['1.5s', 'fraction'],
    ['-1s', 'negative'],
    ['1d', 'unit larger than hours'],
    ['10us', 'unit smaller than milliseconds'],
    ['100000s', 'six digits'],
    ['1h1m1s1ms1h', 'five components'],
    [' 1s', 'leading space'],
    ['1S', 'upper-case unit'],
  ])('%j is rejected (%s)', (s) => {
    expect(isDuration(s)).toBe(false);
    expect(() => parseDurationMs(s)).toThrow(/is not a GEP-2257 duration/);
  });

  it('names the value and the expected form in the error', () => {
    expect(() => parseDurationMs('10x')).toThrow(
      '"10x" is not a GEP-2257 duration: expected 1-4 parts of up to 5 digits and a unit h, m, s or ms (e.g. "10s", "1m30s", "500ms")',
    );
  });
});

describe('formatDurationMs', () => {
  it.each([
    [0, '0s'],
    [500, '500ms'],
    [90_000, '1m30s'],
    [5_430_500, '1h30m30s500ms'],
    [86_400_000, '24h'],
  ])('%d ms is %s', (ms, s) => {
    expect(formatDurationMs(ms)).toBe(s);
    expect(parseDurationMs(s)).toBe(ms);
  });

  it('rejects negative and fractional values', () => {
    expect(() => formatDurationMs(-1)).toThrow();
    expect(() => formatDurationMs(1.5)).toThrow();
  });
});
