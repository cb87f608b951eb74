/**
 * Resource routes of the admin API:
 *
 *   POST   /v1/apply[?dryRun=true]           body: YAML/JSON documents → ApplyResponse (422 on any invalid)
 *   GET    /v1/resources[?kind=K&namespace=N] → ResourceList
 *   GET    /v1/resources/<Kind>/<ns>/<name>   → Resource (404 when missing)
 *   DELETE /v1/resources/<Kind>/<ns>/<name>   → { revision } (404 when missing)
 *   POST   /v1/delete                         body: documents → DeleteResponse
 *   POST   /v1/diff                           body: documents → DiffResponse
 *
 * Read resources carry `metadata.resourceVersion` (their modRevision) and, for routes, the
 * `status` computed by `routeStatus` over the mesh state the control plane currently serves.
 * A Secret's private key is never shown (kinds/secret.ts `redactSecret`), in reads or diffs.
 */
import { createTwoFilesPatch } from 'diff';
import { stringify } from 'yaml';
import { redactSecret } from '../resources/kinds/secret.ts';
import type { Kind, Resource } from '../resources/types.ts';
import { RESOURCES, resourceKey } from '../store/keys.ts';
import type { Store } from '../store/types.ts';
import { routeStatus } from '../translate/status.ts';
import type { MeshState } from '../translate/types.ts';
import { applyResources, deleteDocuments, deleteKeys, plan, validBody } from './apply.ts';
import { ApiError, readText } from './http.ts';
import { fromStore, identityOf, isKind, userView } from './objects.ts';
import type { Route } from './router.ts';
import type { DiffResponse, ResourceList } from './types.ts';

export interface ResourceRouteDeps {
  readonly store: Store;
  readonly mesh: { state(): MeshState };
}

/** `kind` from a path or query, checked against KINDS (400 otherwise). */
function kindParam(kind: string): Kind {
  if (!isKind(kind)) throw new ApiError(400, `unknown kind ${JSON.stringify(kind)}`);
  return kind;
}

/** Adds `status` to routes that `routeStatus` knows about. */
function withStatus(items: Resource[], mesh: { state(): MeshState }): Resource[] {
  if (!items.some((r) => r.kind === 'HTTPRoute' || r.kind === 'GRPCRoute')) return items;
  const statuses = routeStatus(mesh.state());
  return items.map((r) => {
    const status = statuses.get(identityOf(r).id);
    return status === undefined ? r : { ...r, status: { ...status } };
  });
}

/** YAML of a resource's user-owned part (canonical key order), '' for none. */
function yamlOf(r: Resource | undefined): string {
  return r ? stringify(userView(redactSecret(r))) : '';
}

export function resourceRoutes({ store, mesh }: ResourceRouteDeps): Route[] {
  return [
    {
      method: 'POST',
      pattern: /^\/v1\/apply$/,
      async handler({ req, url }) {
        const resources = validBody(await readText(req));
        return applyResources(store, resources, { dryRun: url.searchParams.get('dryRun') === 'true' });
      },
    },
    {
      method: 'GET',
      pattern: /^\/v1\/resources$/,
      async handler({ url }): Promise<ResourceList> {
        const kind = url.searchParams.get('kind');
        const namespace = url.searchParams.get('namespace');
        const prefix = kind
          ? `${RESOURCES}${kindParam(kind)}/${namespace ? `${namespace}/` : ''}`
          : RESOURCES;
        const { items, revision } = await store.list(prefix);
        const resources = items
          .map(fromStore)
          .filter((r): r is Resource => r !== undefined)
          .filter((r) => !namespace || (r.metadata.namespace ?? 'default') === namespace);
        return { revision, items: withStatus(resources, mesh).map(redactSecret) };
      },
    },
    {
      method: 'GET',
      pattern: /^\/v1\/resources\/([^/]+)\/([^/]+)\/([^/]+)$/,
      async handler({ params: [kind = '', ns = '', name = ''] }) {
        const id = `${kind}/${ns}/${name}`;
        const kv = await store.get(resourceKey(kindParam(kind), ns, name));
        const resource = kv && fromStore(kv);
        if (!resource) throw new ApiError(404, `${id} not found`);
        return redactSecret(withStatus([resource], mesh)[0] as Resource);
      },
    },
    {
      method: 'DELETE',
      pattern: /^\/v1\/resources\/([^/]+)\/([^/]+)\/([^/]+)$/,
      async handler({ params: [kind = '', ns = '', name = ''] }) {
        const identity = identityOf({ kind: kindParam(kind), metadata: { name, namespace: ns } });
        const { revision, results } = await deleteKeys(store, [identity]);
        if (results[0]?.action === 'notFound') throw new ApiError(404, `${identity.id} not found`);
        return { revision };
      },
    },
    {
      method: 'POST',
      pattern: /^\/v1\/delete$/,
      async handler({ req }) {
        return deleteDocuments(store, await readText(req));
      },
    },
    {
      method: 'POST',
      pattern: /^\/v1\/diff$/,
      async handler({ req }): Promise<DiffResponse> {
        const changes = await plan(store, validBody(await readText(req)));
        return {
          diffs: changes.map((c) => ({
            id: c.identity.id,
            action: c.action,
            diff:
              c.action === 'unchanged'
                ? ''
                : createTwoFilesPatch(
                    c.currentResource ? `a/${c.identity.id}` : '/dev/null',
                    `b/${c.identity.id}`,
                    yamlOf(c.currentResource),
                    yamlOf(c.resource),
                    c.current ? `revision ${c.current.modRevision}` : undefined,
                    'submitted',
                  ),
          })),
        };
      },
    },
  ];
}
