/**
 * Schema checks of Kubernetes objects with the typed models of `kubernetes-models` (the
 * Kubernetes OpenAPI schemas compiled with ajv): `kubernetes-models/<group>/<version>/<Kind>`,
 * loaded on demand by `apiVersion` and `kind`.
 *
 * The models check types, enums and required fields; like the API server before pruning, they
 * accept unknown fields. Used to check what the injector writes and the manifests under
 * `deploy/kubernetes/`.
 */

interface ModelClass {
  new (data: unknown): { validate(): void };
}

interface AjvError {
  readonly instancePath?: string;
  readonly message?: string;
  readonly params?: unknown;
}

const cache = new Map<string, ModelClass | undefined>();

/** The model class for `apiVersion`/`kind` (`apps/v1`, `Deployment`), or undefined when there is none. */
export async function modelFor(apiVersion: string, kind: string): Promise<ModelClass | undefined> {
  const key = `${apiVersion}/${kind}`;
  if (cache.has(key)) return cache.get(key);
  let model: ModelClass | undefined;
  if (/^([a-z0-9.-]+\/)?v[0-9a-z]+$/.test(apiVersion) && /^[A-Z][A-Za-z0-9]*$/.test(kind)) {
    try {
      const spec = `kubernetes-models/${apiVersion}/${kind}`;
      const mod = (await import(/* @vite-ignore */ spec)) as Record<string, unknown>;
      model = mod[kind] as ModelClass | undefined;
    } catch {
      model = undefined;
    }
  }
  cache.set(key, model);
  return model;
}

/**
 * Checks `object` against its kind's schema. Returns the problems as `<path>: <reason>` lines
 * (empty when valid); an object whose kind has no model is one problem.
 */
export async function schemaProblems(object: unknown): Promise<string[]> {
  if (typeof object !== 'object' || object === null) return ['<root>: not an object'];
  const { apiVersion, kind } = object as { apiVersion?: unknown; kind?: unknown };
  if (typeof apiVersion !== 'string' || typeof kind !== 'string')
    return ['<root>: apiVersion and kind are required'];
  const Model = await modelFor(apiVersion, kind);
  if (Model === undefined) return [`<root>: no schema for ${apiVersion} ${kind}`];
  try {
    new Model(object).validate();
    return [];
  } catch (err) {
    const errors = (err as { errors?: AjvError[] }).errors;
    if (!Array.isArray(errors)) return [`<root>: ${(err as Error).message}`];
    return errors.map(
      (e) => `${e.instancePath || '<root>'}: ${e.message ?? 'invalid'} ${JSON.stringify(e.params ?? {})}`,
    );
  }
}
