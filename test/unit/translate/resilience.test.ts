/**
 * Translation of issue 5's resources beyond the golden files: Envoy retry triggers and their
 * defaults (retry.ts), GEP-1731 retries, how a BackendTrafficPolicy's route-level settings meet a
 * route's own (resilience.ts), section-wise merging of several policies, and GRPCRoute mirrors.
 * Every snapshot here is one the proxy accepts.
 */
import { describe, expect, it } from 'vitest';
import type { Resource } from '../../../control-plane/resources/types.ts';
import { applyRoutePolicy, trafficPolicies } from '../../../control-plane/translate/resilience.ts';
import { httpRouteRetry, policyRetry } from '../../../control-plane/translate/retry.ts';
import { translate } from '../../../control-plane/translate/translate.ts';
import type { ProxyConfig } from '../../../sidecar/proxy/config/model.ts';
import type { Route } from '../../../sidecar/proxy/config/types.ts';
import { proxyProblems, resource, service, sidecar } from './helpers.ts';

const btp = (
  name: string,
  target: string,
  spec: Record<string, unknown>,
  creationTimestamp?: string,
): Resource =>
  resource(
    'BackendTrafficPolicy',
    name,
    { targetRefs: [{ group: '', kind: 'Service', name: target }], ...spec },
    { ...(creationTimestamp !== undefined && { creationTimestamp }) },
  );

function configOf(resources: Resource[]): ProxyConfig {
  const { config } = translate({ revision: 1, resources, endpoints: [] }, sidecar('web'));
  expect(proxyProblems(config)).toEqual([]);
  return config;
}

function routesOf(config: ProxyConfig, vhost: string): readonly Route[] {
  const vh = config.routes.find((r) => r.name === 'outbound')?.virtualHosts?.find((v) => v.name === vhost);
  return vh?.routes ?? [];
}

describe('BackendTrafficPolicy retry triggers (Envoy retry_on)', () => {
  it.each([
    ['connect-failure only', ['connect-failure'], { retryOnConnectFailure: true }],
    ['reset and refused-stream', ['reset', 'refused-stream'], { retryOnReset: true }],
    [
      'gateway-error: 502, 503, 504 and connection errors',
      ['gateway-error'],
      { retryOnStatus: [502, 503, 504], retryOnConnectFailure: true, retryOnReset: true },
    ],
    ['retriable-4xx: 409', ['retriable-4xx'], { retryOnStatus: [409] }],
    ['retriable-status-codes without codes: 503', ['retriable-status-codes'], { retryOnStatus: [503] }],
    [
      'gRPC unavailable and cancelled: statuses 1, 14',
      ['unavailable', 'cancelled'],
      { retryOnGrpcStatus: [1, 14] },
    ],
    [
      'every gRPC trigger: cancelled 1, deadline-exceeded 4, resource-exhausted 8, internal 13, unavailable 14',
      ['internal', 'deadline-exceeded', 'resource-exhausted', 'unavailable', 'cancelled'],
      { retryOnGrpcStatus: [1, 4, 8, 13, 14] },
    ],
    [
      'gRPC and HTTP triggers together',
      ['unavailable', 'connect-failure', 'retriable-status-codes'],
      { retryOnGrpcStatus: [14], retryOnConnectFailure: true, retryOnStatus: [503] },
    ],
  ])('%s', (_name, triggers, expected) => {
    expect(policyRetry({ numRetries: 1, retryOn: { triggers } })).toEqual({ numRetries: 1, ...expected });
  });

  it('5xx is every status 500..599 plus connection errors', () => {
    const r = policyRetry({ retryOn: { triggers: ['5xx'] } });
    expect(r?.retryOnStatus).toHaveLength(100);
    expect(r?.retryOnStatus?.[0]).toBe(500);
    expect(r?.retryOnStatus?.[99]).toBe(599);
    expect(r).toMatchObject({ numRetries: 2, retryOnConnectFailure: true, retryOnReset: true });
  });

  it("defaults to Envoy Gateway's triggers, and codes given alone keep them", () => {
    const defaults = { numRetries: 2, retryOnConnectFailure: true, retryOnReset: true };
    expect(policyRetry({})).toEqual({ ...defaults, retryOnStatus: [503] });
    expect(policyRetry({ retryOn: { httpStatusCodes: [504, 500, 504] } })).toEqual({
      ...defaults,
      retryOnStatus: [500, 504],
    });
  });

  it('maps per-try timeout and backoff; a missing half of the backoff follows Envoy', () => {
    expect(policyRetry({ perRetry: { timeout: '1s', backOff: { baseInterval: '50ms' } } })).toMatchObject({
      perTryTimeoutMs: 1000,
      backoffBaseMs: 50,
      backoffMaxMs: 500,
    });
    expect(policyRetry({ perRetry: { backOff: { maxInterval: '10ms' } } })).toMatchObject({
      backoffBaseMs: 10,
      backoffMaxMs: 10,
    });
    expect(policyRetry({ numRetries: 0 })).toBeUndefined();
  });
});

describe('HTTPRoute retry (GEP-1731)', () => {
  it('retries connection errors whenever a stanza is set; attempts default to 2, 0 turns retries off', () => {
    expect(httpRouteRetry({})).toEqual({ numRetries: 2, retryOnConnectFailure: true, retryOnReset: true });
    expect(httpRouteRetry({ attempts: 0, codes: [503] })).toBeUndefined();
    expect(httpRouteRetry({ codes: [504, 500], attempts: 5, backoff: '0s' })).toEqual({
      numRetries: 5,
      retryOnStatus: [500, 504],
      retryOnConnectFailure: true,
      retryOnReset: true,
    });
  });
});

describe('route-level policy meets the route', () => {
  const forward: Route = { name: 'r', route: { clusters: [{ name: 'c' }] } };

  it('adds the request timeout only where the route has none and its backendRequest fits', () => {
    const policy = { requestMs: 5000 };
    expect(applyRoutePolicy(forward, policy, false).timeouts).toEqual({ requestMs: 5000 });
    expect(applyRoutePolicy({ ...forward, timeouts: { requestMs: 0 } }, policy, false).timeouts).toEqual({
      requestMs: 0,
    });
    expect(
      applyRoutePolicy({ ...forward, timeouts: { backendRequestMs: 2000 } }, policy, false).timeouts,
    ).toEqual({
      backendRequestMs: 2000,
      requestMs: 5000,
    });
    expect(
      applyRoutePolicy({ ...forward, timeouts: { backendRequestMs: 9000 } }, policy, false).timeouts,
    ).toEqual({
      backendRequestMs: 9000,
    });
  });

  it('keeps the rule’s own retry, caps a per-try timeout at the request timeout, and skips redirects', () => {
    const policy = {
      retry: { numRetries: 3, perTryTimeoutMs: 20_000 },
      fault: { abortStatus: 503, abortPercent: 1 },
    };
    expect(applyRoutePolicy(forward, policy, true).retry).toBeUndefined();
    expect(applyRoutePolicy({ ...forward, timeouts: { requestMs: 3000 } }, policy, false).retry).toEqual({
      numRetries: 3,
      perTryTimeoutMs: 3000,
    });
    const redirect: Route = { name: 'r', redirect: { scheme: 'https' } };
    expect(applyRoutePolicy(redirect, policy, false)).toBe(redirect);
  });
});

describe('several policies on one Service', () => {
  it('merge section by section: the oldest policy that sets a section wins it', () => {
    const { routes, clusters } = trafficPolicies([
      btp('newer', 'api', { retry: { numRetries: 9 }, outlierDetection: {} }, '2026-11-30T10:00:00Z'),
      btp('older', 'api', { retry: { numRetries: 1 } }, '2026-11-30T09:00:00Z'),
    ]);
    expect(routes.get('default/api')?.retry?.numRetries).toBe(1);
    expect(clusters.get('default/api')?.outlierDetection).toEqual({});
  });
});

describe('mirrors in GRPCRoute', () => {
  it('a GRPCRoute RequestMirror becomes a mirror too', () => {
    const config = configOf([
      service('greeter'),
      service('greeter-shadow'),
      resource('GRPCRoute', 'g', {
        parentRefs: [{ group: '', kind: 'Service', name: 'greeter' }],
        rules: [
          {
            filters: [
              {
                type: 'RequestMirror',
                requestMirror: { backendRef: { name: 'greeter-shadow', port: 8080 } },
              },
            ],
            backendRefs: [{ name: 'greeter', port: 8080 }],
          },
        ],
      }),
    ]);
    expect(routesOf(config, 'greeter.default:8080')[0]?.mirrors).toEqual([
      { cluster: 'outbound|8080|greeter-shadow.default' },
    ]);
  });
});
