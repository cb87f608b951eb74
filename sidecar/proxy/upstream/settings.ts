/**
 * Reading the numeric fields of the cluster's resilience settings (circuitBreakers, outlierDetection,
 * healthCheck, retryBudget) the way the proto defines them: every field is a `uint32`, and proto3's
 * zero value (or an absent field) means "unset", which takes the documented default.
 *
 * Pure; throws an `Error` naming the field (`circuitBreakers.maxRequests must be …`) for a value that
 * is not an integer in the field's range. resolve.ts prefixes the cluster's name.
 */

/** Longest timer Node can arm (2^31 - 1 ms); every `…Ms` field is capped here. */
export const MAX_TIMER_MS = 2_147_483_647;
/** Largest `uint32`. */
export const MAX_UINT32 = 0xffff_ffff;

/**
 * The value of `section.field` with proto3 defaulting: absent or 0 → `fallback`; otherwise it must be
 * an integer in `min`–`max` (0 is always accepted as "unset").
 */
export function uintField<T extends object>(
  section: T | undefined,
  name: string,
  field: keyof T & string,
  fallback: number,
  min = 1,
  max = MAX_UINT32,
): number {
  const value: unknown = section?.[field] ?? 0;
  if (value === 0) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new Error(
      `${name}.${field} must be 0 (default ${fallback}) or an integer in ${min}-${max}, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}
