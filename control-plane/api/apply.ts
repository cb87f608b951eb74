/**
 * Server-side apply and delete of resource documents (`POST /v1/apply`, `POST /v1/delete`,
 * `POST /v1/diff` share the parsing and planning here).
 *
 * Invariants:
 * - All or nothing: every document is parsed and validated first; any error → 422 with every
 *   error and nothing stored. Valid documents are written in ONE store transaction.
 * - No lost updates: the transaction is conditioned on the modRevision each document's key had
 *   when it was read (0 = absent). On a conflict the plan is recomputed and tried once more;
 *   a second conflict → 409.
 * - Unchanged documents are not written; when nothing changes, no revision is spent and the
 *   reply carries the current revision.
 */
import { parseDocuments } from '../resources/parse.ts';
import type { Resource } from '../resources/types.ts';
import { validateResources } from '../resources/validate.ts';
import {
  type KeyValue,
  type Store,
  type TxnCondition,
  TxnConflictError,
  type TxnOp,
} from '../store/types.ts';
import { ApiError } from './http.ts';
import { fromStore, type Identity, identityOf, looseIdentity, sameContent, toStored } from './objects.ts';
import type { ApplyAction, ApplyResponse, DeleteResponse } from './types.ts';

/** One submitted resource against what the store holds now. */
export interface PlannedChange {
  readonly identity: Identity;
  readonly resource: Resource;
  readonly current: KeyValue | undefined;
  readonly currentResource: Resource | undefined;
  readonly action: ApplyAction;
}

/** Parses a request body into documents; a parse failure → 422 naming `source`. */
export function parseBody(text: string, source: string): unknown[] {
  try {
    return parseDocuments(text, source);
  } catch (err) {
    throw new ApiError(422, 'invalid documents', { errors: [(err as Error).message] });
  }
}

/**
 * Parses and validates every document of `text` (validateResources also rejects two documents
 * naming one resource); throws `ApiError(422, { errors })` when any document is invalid or there
 * is none.
 */
export function validBody(text: string, source = 'request body'): Resource[] {
  const { resources, errors } = validateResources(parseBody(text, source));
  if (errors.length > 0) throw new ApiError(422, 'invalid resources', { errors });
  if (resources.length === 0)
    throw new ApiError(422, 'no resources', { errors: ['no documents in the request'] });
  return resources;
}

/** Reads the stored version of each resource and decides created / configured / unchanged. */
export async function plan(store: Store, resources: readonly Resource[]): Promise<PlannedChange[]> {
  return Promise.all(
    resources.map(async (resource) => {
      const identity = identityOf(resource);
      const current = await store.get(identity.key);
      const currentResource = current && fromStore(current);
      const action: ApplyAction = !current
        ? 'created'
        : currentResource && sameContent(currentResource, resource)
          ? 'unchanged'
          : 'configured';
      return { identity, resource, current, currentResource, action };
    }),
  );
}

/** Runs `attempt`, and once more when it hits a transaction conflict; a second conflict → 409. */
async function retryOnConflict<T>(attempt: () => Promise<T>): Promise<T> {
  try {
    return await attempt();
  } catch (err) {
    if (!(err instanceof TxnConflictError)) throw err;
  }
  try {
    return await attempt();
  } catch (err) {
    if (err instanceof TxnConflictError) {
      throw new ApiError(409, `concurrent modification of ${err.key}; try again`);
    }
    throw err;
  }
}

/**
 * Applies validated resources (see module invariants). With `dryRun` nothing is written and the
 * reply carries the current revision. Throws `ApiError(409)` after two conflicts.
 */
export async function applyResources(
  store: Store,
  resources: readonly Resource[],
  options: { dryRun: boolean; now?: () => Date },
): Promise<ApplyResponse> {
  return retryOnConflict(async () => {
    const changes = await plan(store, resources);
    const results = changes.map((c) => ({ id: c.identity.id, action: c.action }));
    const now = (options.now ?? (() => new Date()))();
    const ops: TxnOp[] = changes
      .filter((c) => c.action !== 'unchanged')
      .map((c) => ({ op: 'put', key: c.identity.key, value: toStored(c.resource, c.currentResource, now) }));
    if (options.dryRun || ops.length === 0) {
      return { revision: await store.revision(), dryRun: options.dryRun, results };
    }
    const conditions: TxnCondition[] = changes.map((c) => ({
      key: c.identity.key,
      modRevision: c.current?.modRevision ?? 0,
    }));
    const revision = await store.txn(ops, conditions);
    return { revision, dryRun: false, results };
  });
}

/**
 * Deletes the resources named by the documents of `text` (only kind, metadata.name and
 * metadata.namespace are read), in one transaction conditioned on their modRevisions.
 * Unknown ones are reported as `notFound`. Throws `ApiError(422)` for unidentifiable documents.
 */
export async function deleteDocuments(store: Store, text: string): Promise<DeleteResponse> {
  const docs = parseBody(text, 'request body');
  const identities: Identity[] = [];
  const errors: string[] = [];
  docs.forEach((doc, i) => {
    const idOrError = looseIdentity(doc, i);
    if (typeof idOrError === 'string') errors.push(idOrError);
    else if (!identities.some((x) => x.key === idOrError.key)) identities.push(idOrError);
  });
  if (errors.length > 0) throw new ApiError(422, 'invalid documents', { errors });
  if (identities.length === 0)
    throw new ApiError(422, 'no resources', { errors: ['no documents in the request'] });
  return deleteKeys(store, identities);
}

/** Deletes the given resources in one conditioned transaction; see `deleteDocuments`. */
export async function deleteKeys(store: Store, identities: readonly Identity[]): Promise<DeleteResponse> {
  return retryOnConflict(async () => {
    const current = await Promise.all(identities.map((i) => store.get(i.key)));
    const ops: TxnOp[] = [];
    const conditions: TxnCondition[] = [];
    const results = identities.map((identity, i) => {
      const kv = current[i];
      if (!kv) return { id: identity.id, action: 'notFound' as const };
      ops.push({ op: 'delete', key: identity.key });
      conditions.push({ key: identity.key, modRevision: kv.modRevision });
      return { id: identity.id, action: 'deleted' as const };
    });
    const revision = ops.length > 0 ? await store.txn(ops, conditions) : await store.revision();
    return { revision, results };
  });
}
