/**
 * Checks shared by both store backends, so they reject the same inputs (etcd v3 API semantics:
 * a key must be non-empty and a txn may name each key at most once, as etcd's "duplicate key
 * given in txn request"), and the key order etcd lists in (bytewise UTF-8).
 */
import type { TxnOp } from './types.ts';

/** Throws an `Error` naming the key when a key is empty or named twice in `ops`. */
export function checkOps(ops: readonly TxnOp[]): void {
  const seen = new Set<string>();
  for (const op of ops) {
    if (op.key === '') throw new Error('store txn: empty key');
    if (seen.has(op.key)) throw new Error(`store txn: key ${op.key} named more than once`);
    seen.add(op.key);
  }
}

/**
 * Compares two strings in the order of their UTF-8 bytes (= code point order), as etcd sorts
 * keys. JavaScript's `<` compares UTF-16 code units, which differs for U+E000..U+FFFF against
 * astral characters.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca !== cb) return codeUnitRank(ca) - codeUnitRank(cb);
  }
  return a.length - b.length;
}

/** Moves surrogates above U+E000..U+FFFF so code units compare like code points. */
function codeUnitRank(c: number): number {
  if (c >= 0xd800 && c <= 0xdfff) return c + 0x2000;
  if (c >= 0xe000) return c - 0x800;
  return c;
}
