/**
 * The admin API's wire shapes (JSON bodies), shared by the server and the `weft` CLI.
 * Revisions are store revisions (numbers); ids are `resourceId`s (`<Kind>/<namespace>/<name>`).
 */

import type { ProxyStatusRecord } from '../discovery/status.ts';
import type { Resource } from '../resources/types.ts';

/** What `apply` did (or would do, in a dry run) to one resource. */
export type ApplyAction = 'created' | 'configured' | 'unchanged';

export interface ApplyResult {
  readonly id: string;
  readonly action: ApplyAction;
}

/** `POST /v1/apply`: the revision written (or current, when nothing changed or in a dry run). */
export interface ApplyResponse {
  readonly revision: number;
  readonly dryRun: boolean;
  readonly results: readonly ApplyResult[];
}

/** `POST /v1/delete`: per document, `deleted` or `notFound` (nothing to delete). */
export interface DeleteResult {
  readonly id: string;
  readonly action: 'deleted' | 'notFound';
}

export interface DeleteResponse {
  readonly revision: number;
  readonly results: readonly DeleteResult[];
}

/** `POST /v1/diff`: a unified diff of the stored YAML against the submitted YAML, per document. */
export interface DiffEntry {
  readonly id: string;
  readonly action: ApplyAction;
  /** Unified diff text; empty when `action` is `unchanged`. */
  readonly diff: string;
}

export interface DiffResponse {
  readonly diffs: readonly DiffEntry[];
}

/** `GET /v1/resources`: the resources at `revision`, sorted by kind, namespace and name. */
export interface ResourceList {
  readonly revision: number;
  readonly items: readonly Resource[];
}

/** A proxy's status record as the discovery server stores it (see discovery/status.ts). */
export type { NackRecord, ProxyStatusRecord } from '../discovery/status.ts';

export interface ProxyList {
  readonly revision: number;
  readonly items: readonly ProxyStatusRecord[];
}

/** `GET /v1/rollout`: which connected proxies reached `revision`. */
export interface RolloutReceipt {
  readonly revision: number;
  /** True when no connected proxy is pending (each synced or NACKed). */
  readonly complete: boolean;
  readonly synced: readonly string[];
  readonly nacked: readonly { readonly proxyId: string; readonly version: string; readonly reason: string }[];
  readonly pending: readonly string[];
}

/** Every error reply: `error` always; `errors` for validation failures (422). */
export interface ErrorBody {
  readonly error: string;
  readonly errors?: readonly string[];
}
