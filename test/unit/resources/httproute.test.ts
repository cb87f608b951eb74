/**
 * HTTPRoute: conformance-style examples validate; CRD defaults are applied; the JSON schema
 * (via @kubernetes-models/gateway-api), unknown fields and the CEL rules of
 * apis/v1/httproute_types.go reject what they should, each error naming resource, field, reason.
 */
import { describe, expect, it } from 'vitest';
import { parseDocuments } from '../../../control-plane/resources/parse.ts';
import { doc, errorsOf, specOf } from './helpers.ts';

const route = (spec: unknown) => doc('HTTPRoute', spec, 'reviews');
const svcParent = { group: '', kind: 'Service', name: 'reviews', port: 9080 };
const backend = { name: 'reviews-v1', port: 9080 };
const rule = (r: Record<string, unknown>) =>
  route({ parentRefs: [svcParent], rules: [{ backendRefs: [backend], ...r }] });
const P = 'HTTPRoute default/reviews: spec.rules[0]';

/** Gateway API conformance manifests (conformance/tests and conformance/tests/mesh), lightly trimmed. */
const CONFORMANCE = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: mesh-split, namespace: gateway-conformance-mesh}
spec:
  parentRefs: [{group: "", kind: Service, name: echo, port: 80}]
  rules:
  - matches: [{path: {type: Exact, value: /v1}}]
    backendRefs: [{name: echo-v1, port: 80}]
  - matches: [{path: {type: Exact, value: /v2}}]
    backendRefs: [{name: echo-v2, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: mesh-weighted, namespace: gateway-conformance-mesh}
spec:
  parentRefs: [{group: core, kind: Service, name: echo}]
  rules:
  - backendRefs:
    - {name: echo-v1, port: 80, weight: 70}
    - {name: echo-v2, port: 80, weight: 30}
    - {name: echo-v3, port: 80, weight: 0}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: mesh-ports, namespace: gateway-conformance-mesh}
spec:
  parentRefs: [{group: "", kind: Service, name: echo-v1, port: 80}]
  rules:
  - filters:
    - type: ResponseHeaderModifier
      responseHeaderModifier: {set: [{name: X-Header-Set, value: v1}]}
    backendRefs: [{name: echo-v1, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: request-header-modifier, namespace: gateway-conformance-infra}
spec:
  parentRefs: [{name: same-namespace}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /set}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: X-Header-Set, value: set-overwrites-values}]
        add: [{name: X-Header-Add, value: header-val-1}]
        remove: [X-Header-Remove]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: redirect-path, namespace: gateway-conformance-infra}
spec:
  parentRefs: [{name: same-namespace}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /original-prefix}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix}}
  - matches: [{path: {type: PathPrefix, value: /full}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {scheme: https, hostname: example.org, port: 8443, statusCode: 301, path: {type: ReplaceFullPath, replaceFullPath: /full-path-replacement}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: rewrite-path, namespace: gateway-conformance-infra}
spec:
  parentRefs: [{name: same-namespace}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /prefix/one}}]
    filters:
    - type: URLRewrite
      urlRewrite: {hostname: one.example.org, path: {type: ReplacePrefixMatch, replacePrefixMatch: /one}}
    backendRefs: [{name: infra-backend-v1, port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: matching, namespace: gateway-conformance-infra}
spec:
  parentRefs: [{name: same-namespace}]
  hostnames: [example.com, "*.example.org"]
  rules:
  - matches:
    - {path: {type: Exact, value: /}, method: GET}
    - {headers: [{name: version, value: one}], queryParams: [{name: animal, value: whale}]}
    - {path: {type: RegularExpression, value: "/v[0-9]+/.*"}, headers: [{type: RegularExpression, name: color, value: "^(red|blue)$"}]}
    backendRefs: [{name: infra-backend-v1, port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: timeouts-and-mirror, namespace: gateway-conformance-infra}
spec:
  parentRefs: [{name: same-namespace, sectionName: http}, {name: same-namespace, sectionName: https}]
  rules:
  - timeouts: {request: 0s, backendRequest: 30s}
    retry: {codes: [500, 502, 503, 504, 429], attempts: 3, backoff: 1s}
    filters:
    - type: RequestMirror
      requestMirror: {backendRef: {name: infra-backend-v2, port: 8080}, fraction: {numerator: 1}}
    - type: RequestMirror
      requestMirror: {backendRef: {name: infra-backend-v3, port: 8080}, percent: 50}
    backendRefs: [{name: infra-backend-v1, port: 8080}]
`;

describe('HTTPRoute: valid', () => {
  it.each(
    parseDocuments(CONFORMANCE, 'conformance.yaml').map((d) => [
      (d as { metadata: { name: string } }).metadata.name,
      d,
    ]),
  )('%s', (_name, d) => {
    expect(errorsOf(d)).toEqual([]);
  });
});

describe('HTTPRoute: defaults', () => {
  it('fills parentRef group/kind, the catch-all rule, path match, backendRef group/kind/weight', () => {
    expect(specOf(route({ parentRefs: [{ name: 'edge' }] }))).toEqual({
      parentRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'edge' }],
      rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/' } }] }],
    });
    expect(
      specOf(
        rule({
          matches: [
            { path: { value: '/a' } },
            { method: 'GET' },
            { headers: [{ name: 'x', value: 'y' }], queryParams: [{ name: 'q', value: '1' }] },
          ],
        }),
      ),
    ).toEqual({
      parentRefs: [svcParent],
      rules: [
        {
          matches: [
            { path: { type: 'PathPrefix', value: '/a' } },
            { path: { type: 'PathPrefix', value: '/' }, method: 'GET' },
            {
              path: { type: 'PathPrefix', value: '/' },
              headers: [{ type: 'Exact', name: 'x', value: 'y' }],
              queryParams: [{ type: 'Exact', name: 'q', value: '1' }],
            },
          ],
          backendRefs: [{ group: '', kind: 'Service', name: 'reviews-v1', port: 9080, weight: 1 }],
        },
      ],
    });
  });

  it('stores the core group of a Service parent as ""', () => {
    const spec = specOf(route({ parentRefs: [{ group: 'core', kind: 'Service', name: 'reviews' }] })) as {
      parentRefs: unknown[];
    };
    expect(spec.parentRefs).toEqual([{ group: '', kind: 'Service', name: 'reviews' }]);
  });

  it('defaults redirect statusCode 302, mirror fraction denominator 100 and mirror backendRef kind', () => {
    const spec = specOf(
      route({
        rules: [
          { filters: [{ type: 'RequestRedirect', requestRedirect: { hostname: 'example.org' } }] },
          {
            filters: [
              {
                type: 'RequestMirror',
                requestMirror: { backendRef: { name: 'm', port: 80 }, fraction: { numerator: 5 } },
              },
            ],
            backendRefs: [backend],
          },
        ],
      }),
    ) as { rules: { filters: unknown[] }[] };
    expect(spec.rules[0]!.filters).toEqual([
      { type: 'RequestRedirect', requestRedirect: { hostname: 'example.org', statusCode: 302 } },
    ]);
    expect(spec.rules[1]!.filters).toEqual([
      {
        type: 'RequestMirror',
        requestMirror: {
          backendRef: { group: '', kind: 'Service', name: 'm', port: 80 },
          fraction: { numerator: 5, denominator: 100 },
        },
      },
    ]);
  });
});

describe('HTTPRoute: invalid', () => {
  it.each([
    // CEL: timeouts (GEP-2257 durations)
    [
      'backendRequest longer than request',
      rule({ timeouts: { request: '5s', backendRequest: '10s' } }),
      [`${P}.timeouts.backendRequest: 10s exceeds request (5s)`],
    ],
    [
      'a duration without a unit',
      rule({ timeouts: { request: '10' } }),
      [`${P}.timeouts.request: must be a duration such as 10s, 1m30s or 500ms (GEP-2257) (got "10")`],
    ],
    // CEL: path values
    [
      'a path with //',
      rule({ matches: [{ path: { type: 'Exact', value: '/a//b' } }] }),
      [`${P}.matches[0].path.value: must not contain "//" for type Exact (got "/a//b")`],
    ],
    [
      'a path with /./',
      rule({ matches: [{ path: { value: '/a/./b' } }] }),
      [`${P}.matches[0].path.value: must not contain "/./" for type PathPrefix (got "/a/./b")`],
    ],
    [
      'a path with /../',
      rule({ matches: [{ path: { value: '/a/../b' } }] }),
      [`${P}.matches[0].path.value: must not contain "/../" for type PathPrefix (got "/a/../b")`],
    ],
    [
      'a path with %2f',
      rule({ matches: [{ path: { value: '/a%2fb' } }] }),
      [`${P}.matches[0].path.value: must not contain "%2f" for type PathPrefix (got "/a%2fb")`],
    ],
    [
      'a path with %2F',
      rule({ matches: [{ path: { value: '/a%2Fb' } }] }),
      [`${P}.matches[0].path.value: must not contain "%2F" for type PathPrefix (got "/a%2Fb")`],
    ],
    [
      'a path with #',
      rule({ matches: [{ path: { value: '/a#b' } }] }),
      [`${P}.matches[0].path.value: must not contain "#" for type PathPrefix (got "/a#b")`],
    ],
    [
      'a path ending in /..',
      rule({ matches: [{ path: { value: '/a/..' } }] }),
      [`${P}.matches[0].path.value: must not end with "/.." for type PathPrefix (got "/a/..")`],
    ],
    [
      'a relative path',
      rule({ matches: [{ path: { type: 'Exact', value: 'a/b' } }] }),
      [`${P}.matches[0].path.value: must be an absolute path starting with "/" for type Exact (got "a/b")`],
    ],
    [
      'a path with a space',
      rule({ matches: [{ path: { value: '/a b' } }] }),
      [
        `${P}.matches[0].path.value: must only contain path characters (RFC 3986 pchar and "/") for type PathPrefix (got "/a b")`,
      ],
    ],
    [
      'a regular expression that does not compile',
      rule({ matches: [{ path: { type: 'RegularExpression', value: '/(a' } }] }),
      [
        expect.stringMatching(
          /^HTTPRoute default\/reviews: spec\.rules\[0\]\.matches\[0\]\.path\.value: invalid regular expression: /,
        ),
      ],
    ],
    [
      'an unknown path type',
      rule({ matches: [{ path: { type: 'Prefix', value: '/' } }] }),
      [`${P}.matches[0].path.type: must be one of Exact, PathPrefix, RegularExpression (got "Prefix")`],
    ],
    // matches
    [
      'a header matched twice (case-insensitive)',
      rule({
        matches: [
          {
            headers: [
              { name: 'X-A', value: '1' },
              { name: 'x-a', value: '2' },
            ],
          },
        ],
      }),
      [`${P}.matches[0].headers[1].name: duplicate header x-a (also at spec.rules[0].matches[0].headers[0])`],
    ],
    [
      'a lower-case method',
      rule({ matches: [{ method: 'get' }] }),
      [
        `${P}.matches[0].method: must be one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH (got "get")`,
      ],
    ],
    // CEL: filters
    [
      'RequestHeaderModifier type without its field',
      rule({ filters: [{ type: 'RequestHeaderModifier' }] }),
      [`${P}.filters[0].requestHeaderModifier: is required when type is RequestHeaderModifier`],
    ],
    [
      'a filter field of another type',
      rule({
        filters: [
          {
            type: 'RequestHeaderModifier',
            requestHeaderModifier: { set: [{ name: 'a', value: 'b' }] },
            urlRewrite: { hostname: 'x' },
          },
        ],
      }),
      [
        `${P}.filters[0].urlRewrite: must not be set when type is RequestHeaderModifier (it belongs to type URLRewrite)`,
      ],
    ],
    [
      'RequestRedirect and URLRewrite in one rule',
      route({
        rules: [
          {
            filters: [
              { type: 'RequestRedirect', requestRedirect: { hostname: 'a.example' } },
              { type: 'URLRewrite', urlRewrite: { hostname: 'b.example' } },
            ],
          },
        ],
      }),
      [
        `${P}.filters[1]: RequestRedirect and URLRewrite cannot be used together (see spec.rules[0].filters[0])`,
      ],
    ],
    [
      'RequestRedirect with backendRefs',
      rule({ filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'https' } }] }),
      [`${P}.filters[0]: RequestRedirect cannot be used together with backendRefs`],
    ],
    [
      'a repeated RequestHeaderModifier',
      rule({
        filters: [
          { type: 'RequestHeaderModifier', requestHeaderModifier: { remove: ['a'] } },
          { type: 'RequestHeaderModifier', requestHeaderModifier: { remove: ['b'] } },
        ],
      }),
      [`${P}.filters[1]: RequestHeaderModifier filter cannot be repeated (also at spec.rules[0].filters[0])`],
    ],
    [
      'ReplacePrefixMatch with an Exact match',
      rule({
        matches: [{ path: { type: 'Exact', value: '/a' } }],
        filters: [
          {
            type: 'URLRewrite',
            urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/b' } },
          },
        ],
      }),
      [
        `${P}.filters[0].urlRewrite.path.replacePrefixMatch: ReplacePrefixMatch needs exactly one match, with a PathPrefix path (got 1 matches: Exact)`,
      ],
    ],
    [
      'ReplacePrefixMatch with two matches, in a backendRef filter',
      route({
        rules: [
          {
            matches: [{ path: { value: '/a' } }, { path: { value: '/b' } }],
            backendRefs: [
              {
                ...backend,
                filters: [
                  {
                    type: 'URLRewrite',
                    urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/c' } },
                  },
                ],
              },
            ],
          },
        ],
      }),
      [
        `${P}.backendRefs[0].filters[0].urlRewrite.path.replacePrefixMatch: ReplacePrefixMatch needs exactly one match, with a PathPrefix path (got 2 matches: PathPrefix, PathPrefix)`,
      ],
    ],
    [
      'a path modifier whose value belongs to the other type',
      rule({
        filters: [
          { type: 'URLRewrite', urlRewrite: { path: { type: 'ReplaceFullPath', replacePrefixMatch: '/x' } } },
        ],
      }),
      [
        `${P}.filters[0].urlRewrite.path.replaceFullPath: is required when type is ReplaceFullPath`,
        `${P}.filters[0].urlRewrite.path.replacePrefixMatch: must not be set when type is ReplaceFullPath`,
      ],
    ],
    [
      'one header with two actions',
      rule({
        filters: [
          {
            type: 'RequestHeaderModifier',
            requestHeaderModifier: { set: [{ name: 'X-A', value: '1' }], remove: ['x-a'] },
          },
        ],
      }),
      [
        `${P}.filters[0].requestHeaderModifier.remove[0]: header x-a already has an action at spec.rules[0].filters[0].requestHeaderModifier.set[0].name; use one action per header`,
      ],
    ],
    [
      'a header set twice',
      rule({
        filters: [
          {
            type: 'ResponseHeaderModifier',
            responseHeaderModifier: {
              set: [
                { name: 'a', value: '1' },
                { name: 'A', value: '2' },
              ],
            },
          },
        ],
      }),
      [
        `${P}.filters[0].responseHeaderModifier.set[1].name: header A already has an action at spec.rules[0].filters[0].responseHeaderModifier.set[0].name; use one action per header`,
      ],
    ],
    [
      'an invalid header name in a modifier',
      rule({
        filters: [
          { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x:y', value: '1' }] } },
        ],
      }),
      [
        `${P}.filters[0].requestHeaderModifier.set[0].name: must be an HTTP header name (RFC 9110 token) (got "x:y")`,
      ],
    ],
    [
      'a mirror with percent and fraction',
      rule({
        filters: [
          {
            type: 'RequestMirror',
            requestMirror: { backendRef: backend, percent: 10, fraction: { numerator: 1 } },
          },
        ],
      }),
      [`${P}.filters[0].requestMirror: set only one of percent, fraction`],
    ],
    [
      'a mirror fraction above 1',
      rule({
        filters: [
          {
            type: 'RequestMirror',
            requestMirror: { backendRef: backend, fraction: { numerator: 3, denominator: 2 } },
          },
        ],
      }),
      [`${P}.filters[0].requestMirror.fraction.numerator: must be <= denominator (2) (got 3)`],
    ],
    [
      'an unknown filter type',
      rule({ filters: [{ type: 'Bogus' }] }),
      [
        expect.stringMatching(
          /^HTTPRoute default\/reviews: spec\.rules\[0\]\.filters\[0\]\.type: must be one of RequestHeaderModifier, ResponseHeaderModifier, RequestMirror, RequestRedirect, URLRewrite, ExtensionRef, CORS/,
        ),
      ],
    ],
    [
      'a redirect status code 300',
      route({ rules: [{ filters: [{ type: 'RequestRedirect', requestRedirect: { statusCode: 300 } }] }] }),
      [`${P}.filters[0].requestRedirect.statusCode: must be one of 301, 302, 303, 307, 308 (got 300)`],
    ],
    [
      'CORS "*" with other origins',
      rule({ filters: [{ type: 'CORS', cors: { allowOrigins: ['*', 'https://a.example'] } }] }),
      [`${P}.filters[0].cors.allowOrigins: "*" cannot be combined with other values`],
    ],
    // backendRefs
    [
      'a weight above 1000000',
      rule({ backendRefs: [{ ...backend, weight: 1_000_001 }] }),
      [`${P}.backendRefs[0].weight: must be <= 1000000 (got 1000001)`],
    ],
    [
      'a negative weight',
      rule({ backendRefs: [{ ...backend, weight: -1 }] }),
      [`${P}.backendRefs[0].weight: must be >= 0 (got -1)`],
    ],
    [
      'a Service backend without a port',
      rule({ backendRefs: [{ name: 'reviews-v1' }] }),
      [`${P}.backendRefs[0].port: is required for a Service backend`],
    ],
    [
      'a port out of range',
      rule({ backendRefs: [{ name: 'reviews-v1', port: 70000 }] }),
      [`${P}.backendRefs[0].port: must be <= 65535 (got 70000)`],
    ],
    [
      'a backend port as a string',
      rule({ backendRefs: [{ name: 'reviews-v1', port: '80' }] }),
      [`${P}.backendRefs[0].port: must be an integer (got string "80")`],
    ],
    // retry (GEP-1731)
    [
      'a retry code below 400',
      rule({ retry: { codes: [200] } }),
      [`${P}.retry.codes[0]: must be >= 400 (got 200)`],
    ],
    [
      'a retry code above 599',
      rule({ retry: { codes: [600] } }),
      [`${P}.retry.codes[0]: must be <= 599 (got 600)`],
    ],
    // sizes (CRD maxItems)
    [
      '17 rules',
      route({ rules: Array.from({ length: 17 }, () => ({ backendRefs: [backend] })) }),
      ['HTTPRoute default/reviews: spec.rules: must have at most 16 items (got 17)'],
    ],
    [
      '17 hostnames',
      route({ hostnames: Array.from({ length: 17 }, (_, i) => `h${i}.example`) }),
      ['HTTPRoute default/reviews: spec.hostnames: must have at most 16 items (got 17)'],
    ],
    [
      'more than 128 matches across rules',
      route({
        rules: Array.from({ length: 3 }, () => ({
          matches: Array.from({ length: 44 }, () => ({ method: 'GET' })),
          backendRefs: [backend],
        })),
      }),
      [
        'HTTPRoute default/reviews: spec.rules: must have at most 128 matches in total across all rules (got 132)',
      ],
    ],
    // names, hostnames, parents
    [
      'a duplicate rule name',
      route({
        rules: [
          { name: 'a', backendRefs: [backend] },
          { name: 'a', backendRefs: [backend] },
        ],
      }),
      ['HTTPRoute default/reviews: spec.rules[1].name: duplicate rule name "a" (also at spec.rules[0])'],
    ],
    [
      'an upper-case hostname',
      route({ hostnames: ['Example.com'] }),
      [
        'HTTPRoute default/reviews: spec.hostnames[0]: must be a lower-case DNS hostname, optionally starting with "*." (no IPs, no port) (got "Example.com")',
      ],
    ],
    [
      'a Service parent without a group',
      route({ parentRefs: [{ kind: 'Service', name: 'reviews' }] }),
      [
        'HTTPRoute default/reviews: spec.parentRefs[0].group: a Service parent (GAMMA) is in the core group: set group "" (or core); the default gateway.networking.k8s.io has no Service kind',
      ],
    ],
    [
      'the same parent twice without sectionName or port',
      route({ parentRefs: [{ name: 'edge' }, { name: 'edge' }] }),
      [
        'HTTPRoute default/reviews: spec.parentRefs[1]: refers to the same parent as spec.parentRefs[0]; set sectionName or port on both (the same field on each)',
      ],
    ],
    [
      'the same parent and section twice',
      route({
        parentRefs: [
          { name: 'edge', sectionName: 'http' },
          { name: 'edge', sectionName: 'http' },
        ],
      }),
      [
        'HTTPRoute default/reviews: spec.parentRefs[1]: duplicate parent reference (also at spec.parentRefs[0])',
      ],
    ],
    // unknown fields and types
    [
      'an unknown rule field',
      rule({ timeout: '5s' }),
      [
        expect.stringMatching(
          /^HTTPRoute default\/reviews: spec\.rules\[0\]\.timeout: unknown field \(known: name, matches, filters, backendRefs, timeouts, retry, sessionPersistence\)$/,
        ),
      ],
    ],
    [
      'an unknown backendRef field',
      rule({ backendRefs: [{ ...backend, wieght: 5 }] }),
      [
        expect.stringMatching(
          /^HTTPRoute default\/reviews: spec\.rules\[0\]\.backendRefs\[0\]\.wieght: unknown field/,
        ),
      ],
    ],
    [
      'an unknown spec field',
      route({ host: 'x' }),
      [
        expect.stringMatching(
          /^HTTPRoute default\/reviews: spec\.host: unknown field \(known: parentRefs, useDefaultGateways, hostnames, rules\)$/,
        ),
      ],
    ],
    [
      'rules that are not a list',
      route({ rules: { a: 1 } }),
      ['HTTPRoute default/reviews: spec.rules: must be a list (got an object)'],
    ],
    [
      'a spec that is a string',
      route('x'),
      ['HTTPRoute default/reviews: spec: must be an object (got string "x")'],
    ],
  ])('%s', (_name, input, expected) => {
    expect(errorsOf(input)).toEqual(expected);
  });
});
