/**
 * Gateway API durations (GEP-2257) to milliseconds.
 *
 * Spec: https://gateway-api.sigs.k8s.io/geps/gep-2257/ — a duration MUST match
 * `^([0-9]{1,5}(h|m|s|ms)){1,4}$` and MUST be read as Go's `time.ParseDuration` reads it, so the
 * components are summed (`1h30m` = 90 min, `01h` = `1h`, and `1s1h` is legal though unusual).
 * `0s` (any zero) is zero, which Gateway API timeouts read as "disabled".
 *
 * Invariants: pure; the result is a non-negative integer number of milliseconds, at most
 * 4 × 99999 h.
 */

/** The GEP-2257 pattern, exactly as in the Gateway API CRDs. */
export const DURATION_PATTERN = /^([0-9]{1,5}(h|m|s|ms)){1,4}$/;

const UNIT_MS: Readonly<Record<string, number>> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 };
const PART = /([0-9]{1,5})(h|ms|m|s)/g;

/** True when `s` is a GEP-2257 duration. */
export function isDuration(s: string): boolean {
  return DURATION_PATTERN.test(s);
}

/**
 * `"1m30s"` → 90000, `"500ms"` → 500, `"0s"` → 0.
 * @throws Error naming the value and the expected form when `s` is not a GEP-2257 duration.
 */
export function parseDurationMs(s: string): number {
  if (typeof s !== 'string' || !DURATION_PATTERN.test(s)) {
    throw new Error(
      `${JSON.stringify(s)} is not a GEP-2257 duration: expected 1-4 parts of up to 5 digits and a unit h, m, s or ms (e.g. "10s", "1m30s", "500ms")`,
    );
  }
  let total = 0;
  for (const [, digits, unit] of s.matchAll(PART)) total += Number(digits) * UNIT_MS[unit!]!;
  return total;
}

/** 90000 → `"1m30s"`, 0 → `"0s"`: the canonical GEP-2257 spelling (greatest unit first). */
export function formatDurationMs(ms: number): string {
  if (!Number.isInteger(ms) || ms < 0) throw new Error(`cannot format ${ms} ms as a GEP-2257 duration`);
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const unit of ['h', 'm', 's', 'ms'] as const) {
    const n = Math.floor(rest / UNIT_MS[unit]!);
    rest -= n * UNIT_MS[unit]!;
    if (n > 0) out += `${n}${unit}`;
  }
  return out;
}
