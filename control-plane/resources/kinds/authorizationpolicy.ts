/**
 * `AuthorizationPolicy` (weft.dev/v1alpha1): allow or deny requests to Services (or a Gateway)
 * by the caller's SPIFFE identity and namespace, the request's path and method, and request
 * headers. Names and matching after Istio's AuthorizationPolicy (security.istio.io/v1).
 *
 * ```yaml
 * spec:
 *   targetRefs: [{kind: Service, name: reviews}]   # optional: absent = every Service in the namespace
 *   action: ALLOW                                  # ALLOW | DENY, default ALLOW
 *   rules:                                         # a request matches if it matches any rule
 *   - from: [{source: {principals: [cluster.local/ns/shop/sa/frontend], notNamespaces: [test]}}]
 *     to: [{operation: {paths: [/api/*], notPaths: [/api/admin*], methods: [GET]}}]
 *     when: [{key: "request.headers[x-tenant]", values: [acme], notValues: [acme-test]}]
 * ```
 * Values may be exact, a prefix (`/api/*`), a suffix (`*.internal`) or `*` (any). Principals are
 * SPIFFE IDs with or without `spiffe://`. Each source and operation sets at least one field; each
 * `when` condition sets values, notValues or both, and its key is `request.headers[<name>]` (the
 * only Istio condition key supported). A rule matches when one `from`, one `to` and every `when`
 * match; `not*` lists match when no value does (Istio).
 */
import { HEADER_NAME } from '../names.ts';
import { enumOf, type Issues, list, obj, optional, type Schema, str, withDefault } from '../schema.ts';
import type { AuthorizationPolicySpec } from '../types.ts';
import type { KindHandler } from './kind.ts';
import { targetRefs } from './policy-common.ts';

/** A value with at most one `*`, at its start or its end. */
function wildcard(describe: string, valid: (core: string, form: 'exact' | 'prefix' | 'suffix') => boolean) {
  return str({
    describe,
    minLength: 1,
    maxLength: 512,
    rule: (s) => {
      if (s === '*') return undefined;
      const form = s.startsWith('*') ? 'suffix' : s.endsWith('*') ? 'prefix' : 'exact';
      const core = form === 'suffix' ? s.slice(1) : form === 'prefix' ? s.slice(0, -1) : s;
      if (core.includes('*')) return 'may hold "*" only at its start or end';
      return valid(core, form) ? undefined : `must be ${describe}`;
    },
  });
}

const principal = wildcard('a SPIFFE ID such as cluster.local/ns/shop/sa/frontend', (c) => !/\s/.test(c));
const namespace = wildcard('a namespace name', (c) => /^[-a-z0-9]*$/.test(c));
const requestPath = wildcard(
  'a path starting with "/"',
  (c, form) => !/[\s?#]/.test(c) && (form === 'suffix' || c.startsWith('/')),
);
const method = wildcard('an HTTP method such as GET', (c) => HEADER_NAME.test(c));

const nonEmpty = (what: string) => (v: object, path: string, issues: Issues) => {
  if (Object.keys(v).length === 0) issues.add(path, `set at least one of ${what}`);
};

const values = <T>(item: Schema<T>) => optional(list(item, { minItems: 1, maxItems: 64 }));

const source = obj(
  {
    principals: values(principal),
    notPrincipals: values(principal),
    namespaces: values(namespace),
    notNamespaces: values(namespace),
  },
  { refine: nonEmpty('principals, notPrincipals, namespaces, notNamespaces') },
);
const operation = obj(
  {
    paths: values(requestPath),
    notPaths: values(requestPath),
    methods: values(method),
    notMethods: values(method),
  },
  { refine: nonEmpty('paths, notPaths, methods, notMethods') },
);

/** Istio condition key for a request header: `request.headers[<name>]`. */
export const HEADER_KEY = /^request\.headers\[([^\]]+)\]$/;

const conditionKey = str({
  describe: 'request.headers[<name>] (the only condition key supported)',
  minLength: 1,
  maxLength: 300,
  rule: (s) => {
    const name = HEADER_KEY.exec(s)?.[1];
    if (name === undefined) return 'must be request.headers[<name>] (the only condition key supported)';
    return HEADER_NAME.test(name) ? undefined : 'must name a valid header in request.headers[<name>]';
  },
});
const headerValue = wildcard('a header value', (c) => !/[\0\r\n]/.test(c));

const condition = obj(
  { key: conditionKey, values: values(headerValue), notValues: values(headerValue) },
  {
    refine: (c, path, issues) => {
      if (c.values === undefined && c.notValues === undefined)
        issues.add(path, 'set values, notValues or both');
    },
  },
);

export const authorizationPolicySpecSchema: Schema<AuthorizationPolicySpec> = obj({
  targetRefs: optional(targetRefs(['Service', 'Gateway'], 0)),
  action: withDefault(enumOf('ALLOW', 'DENY'), 'ALLOW'),
  rules: optional(
    list(
      obj({
        from: optional(list(obj({ source }), { minItems: 1, maxItems: 16 })),
        to: optional(list(obj({ operation }), { minItems: 1, maxItems: 16 })),
        when: optional(list(condition, { minItems: 1, maxItems: 16 })),
      }),
      { maxItems: 64 },
    ),
  ),
});

export const authorizationPolicy: KindHandler = {
  check: (spec, _ctx, issues) => authorizationPolicySpecSchema.check(spec, 'spec', issues),
};
