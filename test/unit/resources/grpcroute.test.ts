/**
 * GRPCRoute: conformance-style examples validate; defaults; schema, unknown fields and the CEL
 * rules of apis/v1/grpcroute_types.go.
 */
import { describe, expect, it } from 'vitest';
import { doc, errorsOf, specOf } from './helpers.ts';

const route = (spec: unknown) => doc('GRPCRoute', spec, 'greeter');
const backend = { name: 'greeter-v1', port: 50051 };
const rule = (r: Record<string, unknown>) =>
  route({
    parentRefs: [{ group: '', kind: 'Service', name: 'greeter' }],
    rules: [{ backendRefs: [backend], ...r }],
  });
const P = 'GRPCRoute default/greeter: spec.rules[0]';

describe('GRPCRoute: valid', () => {
  it.each([
    [
      'exact method matching (conformance grpcroute-exact-method-matching)',
      rule({
        matches: [
          { method: { service: 'gateway_api_conformance.echo_basic.grpcecho.GrpcEcho', method: 'Echo' } },
        ],
      }),
    ],
    ['service only', rule({ matches: [{ method: { service: 'helloworld.Greeter' } }] })],
    ['method only', rule({ matches: [{ method: { method: 'SayHello' } }] })],
    [
      'regular expressions',
      rule({
        matches: [{ method: { type: 'RegularExpression', service: '.*\\.Greeter', method: 'Say.*' } }],
      }),
    ],
    [
      'header matching (conformance grpcroute-header-matching)',
      rule({
        matches: [
          {
            headers: [
              { name: 'version', value: 'one' },
              { type: 'RegularExpression', name: 'color', value: 'red|blue' },
            ],
          },
        ],
      }),
    ],
    [
      'weights (conformance grpcroute-weight)',
      rule({
        backendRefs: [
          { ...backend, weight: 70 },
          { name: 'greeter-v2', port: 50051, weight: 30 },
        ],
      }),
    ],
    [
      'a request header modifier (conformance grpcroute-request-header-modifier)',
      rule({
        filters: [
          {
            type: 'RequestHeaderModifier',
            requestHeaderModifier: {
              set: [{ name: 'X-Header-Set', value: 'set' }],
              add: [{ name: 'X-Header-Add', value: 'add' }],
              remove: ['X-Header-Remove'],
            },
          },
        ],
      }),
    ],
    [
      'a Gateway parent and hostnames',
      route({
        parentRefs: [{ name: 'edge' }],
        hostnames: ['grpc.example.com'],
        rules: [{ backendRefs: [backend] }],
      }),
    ],
  ])('%s', (_name, d) => {
    expect(errorsOf(d)).toEqual([]);
  });
});

describe('GRPCRoute: defaults', () => {
  it('fills method and header match types and backendRef group/kind/weight, adds no default match', () => {
    expect(
      specOf(rule({ matches: [{ method: { service: 'a.B' }, headers: [{ name: 'x', value: 'y' }] }] })),
    ).toEqual({
      parentRefs: [{ group: '', kind: 'Service', name: 'greeter' }],
      rules: [
        {
          matches: [
            {
              method: { type: 'Exact', service: 'a.B' },
              headers: [{ type: 'Exact', name: 'x', value: 'y' }],
            },
          ],
          backendRefs: [{ group: '', kind: 'Service', name: 'greeter-v1', port: 50051, weight: 1 }],
        },
      ],
    });
    expect(specOf(rule({}))).toEqual({
      parentRefs: [{ group: '', kind: 'Service', name: 'greeter' }],
      rules: [{ backendRefs: [{ group: '', kind: 'Service', name: 'greeter-v1', port: 50051, weight: 1 }] }],
    });
  });
});

describe('GRPCRoute: invalid', () => {
  it.each([
    [
      'a method match with neither service nor method',
      rule({ matches: [{ method: { type: 'Exact' } }] }),
      [`${P}.matches[0].method: set service, method or both`],
    ],
    [
      'a service name with a slash',
      rule({ matches: [{ method: { service: 'helloworld/Greeter' } }] }),
      [
        `${P}.matches[0].method.service: must be a proto service name such as helloworld.Greeter (got "helloworld/Greeter")`,
      ],
    ],
    [
      'a method name with a dot',
      rule({ matches: [{ method: { method: 'Say.Hello' } }] }),
      [`${P}.matches[0].method.method: must be a proto method name such as SayHello (got "Say.Hello")`],
    ],
    [
      'a method regular expression that does not compile',
      rule({ matches: [{ method: { type: 'RegularExpression', method: '(' } }] }),
      [
        expect.stringMatching(
          /^GRPCRoute default\/greeter: spec\.rules\[0\]\.matches\[0\]\.method\.method: invalid regular expression/,
        ),
      ],
    ],
    [
      'a header matched twice',
      rule({
        matches: [
          {
            headers: [
              { name: 'a', value: '1' },
              { name: 'A', value: '2' },
            ],
          },
        ],
      }),
      [`${P}.matches[0].headers[1].name: duplicate header A (also at spec.rules[0].matches[0].headers[0])`],
    ],
    [
      'a URLRewrite filter (HTTP only)',
      rule({ filters: [{ type: 'URLRewrite' }] }),
      [
        `${P}.filters[0].type: must be one of ResponseHeaderModifier, RequestHeaderModifier, RequestMirror, ExtensionRef (got "URLRewrite")`,
      ],
    ],
    [
      'a filter type without its field',
      rule({ filters: [{ type: 'ResponseHeaderModifier' }] }),
      [`${P}.filters[0].responseHeaderModifier: is required when type is ResponseHeaderModifier`],
    ],
    [
      'a repeated ResponseHeaderModifier',
      rule({
        filters: [
          { type: 'ResponseHeaderModifier', responseHeaderModifier: { remove: ['a'] } },
          { type: 'ResponseHeaderModifier', responseHeaderModifier: { remove: ['b'] } },
        ],
      }),
      [
        `${P}.filters[1]: ResponseHeaderModifier filter cannot be repeated (also at spec.rules[0].filters[0])`,
      ],
    ],
    [
      'a Service backend without a port',
      rule({ backendRefs: [{ name: 'greeter-v1' }] }),
      [`${P}.backendRefs[0].port: is required for a Service backend`],
    ],
    [
      'timeouts (HTTPRoute only)',
      rule({ timeouts: { request: '1s' } }),
      [
        expect.stringMatching(
          /^GRPCRoute default\/greeter: spec\.rules\[0\]\.timeouts: unknown field \(known: name, matches, filters, backendRefs, sessionPersistence\)$/,
        ),
      ],
    ],
    [
      '17 rules',
      route({ rules: Array.from({ length: 17 }, () => ({ backendRefs: [backend] })) }),
      ['GRPCRoute default/greeter: spec.rules: must have at most 16 items (got 17)'],
    ],
  ])('%s', (_name, input, expected) => {
    expect(errorsOf(input)).toEqual(expected);
  });
});
