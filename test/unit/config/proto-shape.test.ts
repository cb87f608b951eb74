/**
 * Keeps sidecar/proxy/config/types.ts and proto/weft/v1/config.proto in step: `FULL` is typed
 * as `Bootstrap` (so tsc rejects a field the TypeScript types lack) and must set every field
 * the proto declares (checked by walking the proto schema), and pass the proto schema check.
 */
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { checkAgainstProto, configSchema } from '../../../sidecar/proxy/config/schema.ts';
import type { Bootstrap, HeaderModifier } from '../../../sidecar/proxy/config/types.ts';

const mod: HeaderModifier = {
  set: [{ name: 'a', value: '1' }],
  add: [{ name: 'b', value: '2' }],
  remove: ['c'],
};

const FULL: Bootstrap = {
  node: { id: 'web-1', service: 'web', namespace: 'default', workload: 'web-v1' },
  admin: { address: '127.0.0.1', port: 15000 },
  listeners: [
    {
      name: 'outbound',
      address: '127.0.0.1',
      port: 15001,
      direction: 'OUTBOUND',
      routeConfigName: 'r',
      limits: {
        maxRequestHeadersBytes: 16384,
        maxRequestHeadersCount: 100,
        requestHeadersTimeoutMs: 10000,
        idleTimeoutMs: 60000,
        maxConnections: 1000,
        requestTimeoutMs: 0,
      },
      xffNumTrustedHops: 1,
      drainTimeoutMs: 5000,
    },
  ],
  routes: [
    {
      name: 'r',
      virtualHosts: [
        {
          name: 'vh',
          domains: ['svc'],
          routes: [
            {
              name: 'a',
              matches: [
                {
                  path: { type: 'PATH_PREFIX', value: '/a' },
                  headers: [{ name: 'x', type: 'EXACT', value: '1' }],
                  queryParams: [{ name: 'q', type: 'REGULAR_EXPRESSION', value: '.*' }],
                  method: 'GET',
                },
              ],
              route: {
                clusters: [
                  {
                    name: 'c',
                    weight: 1,
                    invalidReason: '',
                    requestHeaderModifier: mod,
                    responseHeaderModifier: mod,
                  },
                ],
              },
              requestHeaderModifier: mod,
              responseHeaderModifier: mod,
              urlRewrite: { hostname: 'h', path: { type: 'REPLACE_PREFIX_MATCH', value: '/b' } },
              timeouts: { requestMs: 1000, backendRequestMs: 500 },
            },
            {
              name: 'b',
              redirect: {
                scheme: 'https',
                hostname: 'h',
                port: 443,
                path: { type: 'REPLACE_FULL_PATH', value: '/' },
                statusCode: 301,
              },
            },
            { name: 'c', directResponse: { status: 200, body: 'ok', contentType: 'text/plain' } },
          ],
        },
      ],
    },
  ],
  clusters: [
    {
      name: 'c',
      lbPolicy: 'CONSISTENT_HASH',
      hashHeader: 'x-user',
      connectionPool: {
        maxConnectionsPerEndpoint: 10,
        connectTimeoutMs: 1000,
        idleTimeoutMs: 4000,
        maxRequestsPerConnection: 100,
      },
    },
  ],
  endpoints: [
    {
      clusterName: 'c',
      endpoints: [
        { address: '127.0.0.1', port: 8080, weight: 1, labels: { version: 'v1' }, health: 'HEALTHY' },
      ],
    },
  ],
};

/** Collects `Type.field` names the value never sets, walking the proto schema. */
function unsetFields(type: protobuf.Type, values: readonly unknown[], missing: Set<string>): void {
  for (const field of type.fieldsArray) {
    const present = values
      .map((v) => (v as Record<string, unknown>)[field.name])
      .filter((v) => v !== undefined)
      .flatMap((v) => (field.repeated && Array.isArray(v) ? v : [v]));
    if (present.length === 0) {
      missing.add(`${type.name}.${field.name}`);
      continue;
    }
    if (field.resolvedType instanceof protobuf.Type && !(field instanceof protobuf.MapField)) {
      unsetFields(field.resolvedType, present, missing);
    }
  }
}

describe('proxy config types and proto', () => {
  it('a bootstrap that sets every TypeScript field passes the proto schema check', () => {
    expect(checkAgainstProto('weft.v1.Bootstrap', FULL)).toEqual([]);
  });

  it('every proto field has a TypeScript counterpart', () => {
    const missing = new Set<string>();
    unsetFields(configSchema().lookupType('weft.v1.Bootstrap'), [FULL], missing);
    expect([...missing]).toEqual([]);
  });
});
