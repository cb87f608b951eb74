/**
 * The contract between `validate.ts` and each kind's module: check one spec, return its
 * defaulted copy. The envelope (apiVersion, metadata) is checked before a handler runs.
 */
import type { Issues } from '../schema.ts';

/** The resource's identity, as validated and defaulted (namespace `default` when absent). */
export interface SpecContext {
  readonly name: string;
  readonly namespace: string;
}

export interface KindHandler {
  /**
   * Checks `spec` (a fresh copy the handler may keep) and returns the defaulted spec, or
   * `undefined` after adding issues whose paths start with `spec`.
   */
  check(spec: unknown, ctx: SpecContext, issues: Issues): unknown;
}
