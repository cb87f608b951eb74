/**
 * gRPC status helpers (sidecar/proxy/http/grpc-status.ts): which requests are gRPC, reading
 * `grpc-status`, the HTTP ↔ gRPC status mappings (gRPC's http-grpc-status-mapping.md, Envoy's
 * `grpcToHttpStatus`), the status of each mesh error, and `grpc-message` percent-encoding.
 */
import { describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE, type ErrorKind } from '../../../sidecar/proxy/errors.ts';
import {
  decodeGrpcMessage,
  encodeGrpcMessage,
  GRPC_STATUS,
  grpcStatusForError,
  grpcStatusName,
  grpcStatusOf,
  grpcToHttpStatus,
  httpToGrpcStatus,
  isGrpcContentType,
  outcomeStatus,
  parseGrpcStatus,
} from '../../../sidecar/proxy/http/grpc-status.ts';

describe('isGrpcContentType', () => {
  it.each([
    ['application/grpc', true],
    ['application/grpc+proto', true],
    ['application/grpc+json', true],
    ['Application/GRPC', true],
    ['application/grpc; charset=utf-8', true],
    ['application/grpc-web', false],
    ['application/grpc-web+proto', false],
    ['application/grpcx', false],
    ['application/json', false],
    ['text/plain', false],
    ['', false],
  ])('%j → %s', (value, expected) => {
    expect(isGrpcContentType(value)).toBe(expected);
  });

  it('is false without a content-type or with a repeated one', () => {
    expect(isGrpcContentType(undefined)).toBe(false);
    expect(isGrpcContentType(['application/grpc', 'application/grpc'])).toBe(false);
  });
});

describe('parseGrpcStatus / grpcStatusOf', () => {
  it.each([
    ['0', 0],
    ['14', 14],
    ['16', 16],
    ['17', 17],
  ])('reads %j as %d', (value, code) => {
    expect(parseGrpcStatus(value)).toBe(code);
  });

  it.each([['-1'], ['1.5'], [' 14'], ['14 '], ['UNAVAILABLE'], [''], ['12345678901']])(
    'rejects %j',
    (value) => {
      expect(parseGrpcStatus(value)).toBeUndefined();
    },
  );

  it('reads the status of a head or trailers map; absent or repeated is none', () => {
    expect(grpcStatusOf({ 'grpc-status': '5', 'grpc-message': 'x' })).toBe(5);
    expect(grpcStatusOf({ 'content-type': 'application/grpc' })).toBeUndefined();
    expect(grpcStatusOf({ 'grpc-status': ['5', '0'] })).toBeUndefined();
  });
});

describe('status names', () => {
  it('names every code 0..16 and nothing else', () => {
    expect(grpcStatusName(0)).toBe('OK');
    expect(grpcStatusName(14)).toBe('UNAVAILABLE');
    expect(grpcStatusName(16)).toBe('UNAUTHENTICATED');
    expect(grpcStatusName(17)).toBeUndefined();
    for (const [name, code] of Object.entries(GRPC_STATUS)) expect(grpcStatusName(code)).toBe(name);
  });
});

describe('grpcToHttpStatus (Envoy grpcToHttpStatus, for outcome recording)', () => {
  it.each([
    ['OK', 200],
    ['CANCELLED', 499],
    ['UNKNOWN', 500],
    ['INVALID_ARGUMENT', 400],
    ['DEADLINE_EXCEEDED', 504],
    ['NOT_FOUND', 404],
    ['ALREADY_EXISTS', 409],
    ['PERMISSION_DENIED', 403],
    ['RESOURCE_EXHAUSTED', 429],
    ['FAILED_PRECONDITION', 400],
    ['ABORTED', 409],
    ['OUT_OF_RANGE', 400],
    ['UNIMPLEMENTED', 501],
    ['INTERNAL', 500],
    ['UNAVAILABLE', 503],
    ['DATA_LOSS', 500],
    ['UNAUTHENTICATED', 401],
  ] as const)('%s → %d', (name, http) => {
    expect(grpcToHttpStatus(GRPC_STATUS[name])).toBe(http);
  });

  it('maps an unknown code to 500', () => {
    expect(grpcToHttpStatus(42)).toBe(500);
  });

  it('records a Trailers-Only gRPC status as its HTTP equivalent, anything else as the HTTP status', () => {
    expect(outcomeStatus(200, { 'grpc-status': '14' })).toBe(503);
    expect(outcomeStatus(200, { 'grpc-status': '0' })).toBe(200);
    expect(outcomeStatus(200, { 'content-type': 'application/grpc' })).toBe(200);
    expect(outcomeStatus(503, { 'grpc-status': '0' })).toBe(503);
  });
});

describe('httpToGrpcStatus (gRPC http-grpc-status-mapping, 504 as DEADLINE_EXCEEDED)', () => {
  it.each([
    [400, 'INTERNAL'],
    [401, 'UNAUTHENTICATED'],
    [403, 'PERMISSION_DENIED'],
    [404, 'UNIMPLEMENTED'],
    [429, 'UNAVAILABLE'],
    [502, 'UNAVAILABLE'],
    [503, 'UNAVAILABLE'],
    [504, 'DEADLINE_EXCEEDED'],
    [500, 'UNKNOWN'],
    [418, 'UNKNOWN'],
  ] as const)('%d → %s', (http, name) => {
    expect(httpToGrpcStatus(http)).toBe(GRPC_STATUS[name]);
  });
});

describe('grpcStatusForError: what a gRPC client sees for each mesh error', () => {
  const expected: Record<ErrorKind, keyof typeof GRPC_STATUS> = {
    NO_ROUTE: 'UNIMPLEMENTED',
    INVALID_BACKEND: 'UNKNOWN',
    CLUSTER_NOT_FOUND: 'UNAVAILABLE',
    NO_HEALTHY_UPSTREAM: 'UNAVAILABLE',
    UPSTREAM_CONNECT_FAILURE: 'UNAVAILABLE',
    UPSTREAM_RESET: 'UNAVAILABLE',
    UPSTREAM_PROTOCOL_ERROR: 'UNAVAILABLE',
    UPSTREAM_TIMEOUT: 'DEADLINE_EXCEEDED',
    REQUEST_TIMEOUT: 'DEADLINE_EXCEEDED',
    OVERFLOW: 'UNAVAILABLE',
    CIRCUIT_OPEN: 'UNAVAILABLE',
    FAULT_INJECTED: 'UNAVAILABLE',
    RBAC_DENIED: 'PERMISSION_DENIED',
    RATE_LIMITED: 'UNAVAILABLE',
    UNAUTHENTICATED: 'UNAUTHENTICATED',
    BAD_REQUEST: 'INTERNAL',
    REQUEST_HEADERS_TOO_LARGE: 'RESOURCE_EXHAUSTED',
    DOWNSTREAM_HEADERS_TIMEOUT: 'DEADLINE_EXCEEDED',
    DOWNSTREAM_REQUEST_TIMEOUT: 'DEADLINE_EXCEEDED',
    STREAM_IDLE_TIMEOUT: 'DEADLINE_EXCEEDED',
    DOWNSTREAM_DISCONNECT: 'CANCELLED',
    URI_TOO_LONG: 'INTERNAL',
    REQUEST_BODY_TOO_LARGE: 'RESOURCE_EXHAUSTED',
    RATE_LIMIT_UNAVAILABLE: 'UNAVAILABLE',
    OVERLOADED: 'UNAVAILABLE',
  };

  it.each(Object.keys(ERROR_CATALOGUE) as ErrorKind[])('%s', (kind) => {
    expect(grpcStatusName(grpcStatusForError(kind, ERROR_CATALOGUE[kind].status))).toBe(expected[kind]);
  });

  it('follows the configured status of an injected fault', () => {
    expect(grpcStatusForError('FAULT_INJECTED', 403)).toBe(GRPC_STATUS.PERMISSION_DENIED);
    expect(grpcStatusForError('FAULT_INJECTED', 500)).toBe(GRPC_STATUS.UNKNOWN);
  });
});

describe('grpc-message percent-encoding (PROTOCOL-HTTP2.md)', () => {
  it('leaves printable ASCII as is', () => {
    expect(encodeGrpcMessage('the cluster has no healthy endpoint')).toBe(
      'the cluster has no healthy endpoint',
    );
  });

  it('encodes %, control characters and non-ASCII as UTF-8 bytes in upper-case hex', () => {
    expect(encodeGrpcMessage('100% done\n')).toBe('100%25 done%0A');
    expect(encodeGrpcMessage('café ☕')).toBe('caf%C3%A9 %E2%98%95');
  });

  it('decodes what it encodes, and keeps a stray % as is', () => {
    for (const s of ['plain', '100% done\n', 'café ☕', '%%%'])
      expect(decodeGrpcMessage(encodeGrpcMessage(s))).toBe(s);
    expect(decodeGrpcMessage('50%z')).toBe('50%z');
  });
});
