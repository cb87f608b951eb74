/**
 * AuthorizationPolicy's Istio fields beyond principals/namespaces/paths/methods: `notPrincipals`,
 * `notNamespaces`, `notPaths`, `notMethods` and `when` conditions on request headers (the base
 * cases are in policies.test.ts). Each rejection names resource, field and reason.
 */
import { describe, expect, it } from 'vitest';
import { doc, errorsOf, specOf } from './helpers.ts';

const authz = (spec: Record<string, unknown>) => doc('AuthorizationPolicy', spec, 'p');
const A = 'AuthorizationPolicy default/p: spec';

describe('AuthorizationPolicy: not* fields and when conditions', () => {
  it('accepts every Istio field Weft supports, and keeps them as written', () => {
    const rules = [
      {
        from: [
          { source: { notPrincipals: ['*'] } },
          { source: { principals: ['cluster.local/ns/shop/*'], notNamespaces: ['test-*'] } },
        ],
        to: [{ operation: { paths: ['/api/*'], notPaths: ['/api/admin*'], notMethods: ['DELETE'] } }],
        when: [
          { key: 'request.headers[X-Tenant]', values: ['acme', 'acme-*'], notValues: ['acme-test'] },
          { key: 'request.headers[x-env]', notValues: ['*canary'] },
        ],
      },
    ];
    expect(specOf(authz({ action: 'DENY', rules }))).toEqual({ action: 'DENY', rules });
  });

  it.each([
    [
      'a condition key other than request.headers[...]',
      authz({ rules: [{ when: [{ key: 'source.ip', values: ['10.0.0.1'] }] }] }),
      [
        `${A}.rules[0].when[0].key: must be request.headers[<name>] (the only condition key supported) (got "source.ip")`,
      ],
    ],
    [
      'a condition on an invalid header name',
      authz({ rules: [{ when: [{ key: 'request.headers[x tenant]', values: ['a'] }] }] }),
      [
        `${A}.rules[0].when[0].key: must name a valid header in request.headers[<name>] (got "request.headers[x tenant]")`,
      ],
    ],
    [
      'a condition without values or notValues',
      authz({ rules: [{ when: [{ key: 'request.headers[x-tenant]' }] }] }),
      [`${A}.rules[0].when[0]: set values, notValues or both`],
    ],
    [
      'a condition value with "*" in the middle',
      authz({ rules: [{ when: [{ key: 'request.headers[x-tenant]', values: ['a*b'] }] }] }),
      [`${A}.rules[0].when[0].values[0]: may hold "*" only at its start or end (got "a*b")`],
    ],
    [
      'a condition value with a line break',
      authz({ rules: [{ when: [{ key: 'request.headers[x-tenant]', notValues: ['a\r\nb'] }] }] }),
      [`${A}.rules[0].when[0].notValues[0]: must be a header value (got "a\\r\\nb")`],
    ],
    ['an empty when list', authz({ rules: [{ when: [] }] }), [`${A}.rules[0].when: must not be empty`]],
    [
      'a relative notPath',
      authz({ rules: [{ to: [{ operation: { notPaths: ['admin'] } }] }] }),
      [`${A}.rules[0].to[0].operation.notPaths[0]: must be a path starting with "/" (got "admin")`],
    ],
    [
      'a notMethods value that is not a method',
      authz({ rules: [{ to: [{ operation: { notMethods: ['GET POST'] } }] }] }),
      [`${A}.rules[0].to[0].operation.notMethods[0]: must be an HTTP method such as GET (got "GET POST")`],
    ],
    [
      'an upper-case notNamespace',
      authz({ rules: [{ from: [{ source: { notNamespaces: ['Test'] } }] }] }),
      [`${A}.rules[0].from[0].source.notNamespaces[0]: must be a namespace name (got "Test")`],
    ],
    [
      'an Istio source field Weft does not support',
      authz({ rules: [{ from: [{ source: { ipBlocks: ['10.0.0.0/8'] } }] }] }),
      [
        `${A}.rules[0].from[0].source.ipBlocks: unknown field (known: principals, notPrincipals, namespaces, notNamespaces)`,
      ],
    ],
    [
      'an Istio operation field Weft does not support',
      authz({ rules: [{ to: [{ operation: { ports: ['8080'] } }] }] }),
      [`${A}.rules[0].to[0].operation.ports: unknown field (known: paths, notPaths, methods, notMethods)`],
    ],
  ])('rejects %s', (_name, input, expected) => {
    expect(errorsOf(input)).toEqual(expected);
  });
});
