/**
 * Total orders the translator sorts by, so that its output never depends on input order.
 *
 * Resources follow Gateway API's tie-break order: oldest `creationTimestamp` first, then
 * `namespace/name` alphabetically (then kind, so two kinds with one name stay apart). Resources
 * without a timestamp sort as if created at the epoch. Strings compare by UTF-16 code units
 * (never locale), which is stable across machines.
 */
import type { Resource } from '../resources/types.ts';
import { namespaceOf } from './specs.ts';

/** Code-unit string comparison (locale-independent). */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Parsed creation time in ms, 0 when absent or unparsable. */
function createdMs(r: Pick<Resource, 'metadata'>): number {
  const t = r.metadata.creationTimestamp;
  if (t === undefined) return 0;
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? 0 : ms;
}

/** creationTimestamp, then namespace, then name, then kind. */
export function compareResources(
  a: Pick<Resource, 'metadata' | 'kind'>,
  b: Pick<Resource, 'metadata' | 'kind'>,
): number {
  return (
    createdMs(a) - createdMs(b) ||
    compareStrings(namespaceOf(a), namespaceOf(b)) ||
    compareStrings(a.metadata.name, b.metadata.name) ||
    compareStrings(a.kind, b.kind)
  );
}

/** A copy of `items` sorted by `compare`; the input is not touched. */
export function sortedBy<T>(items: readonly T[], compare: (a: T, b: T) => number): T[] {
  return [...items].sort(compare);
}

/** A copy of `record` with keys in code-unit order (stable JSON text). */
export function sortedRecord(record: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of Object.keys(record).sort(compareStrings)) out[key] = record[key]!;
  return out;
}
