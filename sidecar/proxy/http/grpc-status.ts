/**
 * gRPC status handling for the proxy (gRPC over HTTP/2, doc/PROTOCOL-HTTP2.md; status codes,
 * doc/statuscodes.md; HTTP ↔ gRPC mapping, doc/http-grpc-status-mapping.md; Envoy's
 * `Grpc::Common` / `Grpc::Utility` for what an intermediary does with them).
 *
 * - A request is gRPC when its `content-type` is `application/grpc` or `application/grpc+<codec>`
 *   (parameters after `;` allowed, case-insensitive), as Envoy's `isGrpcRequestHeaders`;
 *   gRPC-Web (`application/grpc-web*`) is not gRPC here: its trailers travel in the body.
 * - A response's gRPC status is the `grpc-status` of its trailers, or of its head when the
 *   response is Trailers-Only (a single HEADERS frame that ends the stream, status included).
 *   Both are read by `grpcStatusOf` and count the same everywhere: the `grpc_response_status`
 *   metric label, the retry decision (retry.ts: only a Trailers-Only status can be retried, since
 *   otherwise the head already went downstream) and the outcome recorded for outlier detection
 *   and breakers (`grpcOutcomeStatus`: the gRPC status as the HTTP status Envoy maps it to, so a
 *   gRPC UNAVAILABLE inside HTTP 200 counts as a 503 gateway error, as Envoy's router does).
 * - A mesh error answered to a gRPC client (local-reply.ts) is HTTP 200 Trailers-Only with
 *   `grpc-status` from `grpcStatusForError` and a percent-encoded `grpc-message`.
 *
 * Invariants: every function here is pure; status codes are integers in [0, 16] when known, and a
 * `grpc-status` that is not a non-negative integer reads as absent.
 */
import type { ErrorKind } from '../errors.ts';

/** The gRPC status codes (doc/statuscodes.md), by name. */
export const GRPC_STATUS = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

export type GrpcStatusName = keyof typeof GRPC_STATUS;

const NAMES: readonly GrpcStatusName[] = Object.keys(GRPC_STATUS) as GrpcStatusName[];

/** The name of a status code (`14` → `UNAVAILABLE`), or undefined for a code outside 0..16. */
export function grpcStatusName(code: number): GrpcStatusName | undefined {
  return NAMES[code];
}

/**
 * Whether a request `content-type` is gRPC: `application/grpc`, or `application/grpc+<codec>`,
 * optionally followed by `;` parameters; case-insensitive. Not gRPC-Web.
 */
export function isGrpcContentType(contentType: string | readonly string[] | undefined): boolean {
  if (typeof contentType !== 'string' || contentType.length < 16) return false;
  if (contentType.slice(0, 16).toLowerCase() !== 'application/grpc') return false;
  if (contentType.length === 16) return true;
  const next = contentType.charCodeAt(16);
  return next === 43 /* + */ || next === 59 /* ; */ || next === 32 /* SP */;
}

const DIGITS = /^\d{1,10}$/;

/**
 * The status of a `grpc-status` header value: a non-negative decimal integer (codes above 16 are
 * kept as given; clients treat them as UNKNOWN), or undefined when absent, repeated or malformed.
 */
export function parseGrpcStatus(value: string | readonly string[] | undefined): number | undefined {
  if (typeof value !== 'string' || !DIGITS.test(value)) return undefined;
  return Number(value);
}

/**
 * The gRPC status of a response from one header map: its trailers, or its head when that is
 * Trailers-Only. Undefined when the map has no valid `grpc-status`.
 */
export function grpcStatusOf(
  headers: Readonly<Record<string, string | string[] | undefined>>,
): number | undefined {
  return parseGrpcStatus(headers['grpc-status']);
}

/**
 * The HTTP status a gRPC status stands for when an outcome is recorded on an endpoint (Envoy's
 * `Grpc::Utility::grpcToHttpStatus`): OK 200, CANCELLED 499, UNKNOWN / INTERNAL / DATA_LOSS 500,
 * INVALID_ARGUMENT / FAILED_PRECONDITION / OUT_OF_RANGE 400, DEADLINE_EXCEEDED 504, NOT_FOUND 404,
 * ALREADY_EXISTS / ABORTED 409, PERMISSION_DENIED 403, RESOURCE_EXHAUSTED 429, UNIMPLEMENTED 501,
 * UNAVAILABLE 503, UNAUTHENTICATED 401; any other code 500.
 */
export function grpcToHttpStatus(code: number): number {
  return GRPC_TO_HTTP[code] ?? 500;
}

/**
 * The status an attempt's response head is recorded with on its endpoint: a Trailers-Only gRPC
 * response's `grpc-status` as `grpcToHttpStatus` maps it (UNAVAILABLE in HTTP 200 → 503), else the
 * HTTP status.
 */
export function outcomeStatus(
  httpStatus: number,
  headers: Readonly<Record<string, string | string[] | undefined>>,
): number {
  if (httpStatus !== 200) return httpStatus;
  const code = parseGrpcStatus(headers['grpc-status']);
  return code === undefined ? httpStatus : grpcToHttpStatus(code);
}

const GRPC_TO_HTTP: readonly number[] = [
  200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401,
];

/**
 * The gRPC status for an HTTP status a gRPC client would otherwise see (gRPC's
 * http-grpc-status-mapping.md, as Envoy's `httpToGrpcStatus`): 400 INTERNAL, 401 UNAUTHENTICATED,
 * 403 PERMISSION_DENIED, 404 UNIMPLEMENTED, 429 / 502 / 503 UNAVAILABLE; and, unlike that table
 * (which says UNAVAILABLE), 504 DEADLINE_EXCEEDED, since the proxy answers 504 only when a
 * deadline passed; anything else UNKNOWN.
 */
export function httpToGrpcStatus(httpStatus: number): number {
  switch (httpStatus) {
    case 400:
      return GRPC_STATUS.INTERNAL;
    case 401:
      return GRPC_STATUS.UNAUTHENTICATED;
    case 403:
      return GRPC_STATUS.PERMISSION_DENIED;
    case 404:
      return GRPC_STATUS.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
      return GRPC_STATUS.UNAVAILABLE;
    case 504:
      return GRPC_STATUS.DEADLINE_EXCEEDED;
    default:
      return GRPC_STATUS.UNKNOWN;
  }
}

/** Error kinds whose gRPC status is not simply that of their HTTP status. */
const KIND_STATUS: Partial<Readonly<Record<ErrorKind, number>>> = {
  // 431: the request's metadata is too large (grpc-core says RESOURCE_EXHAUSTED for that).
  REQUEST_HEADERS_TOO_LARGE: GRPC_STATUS.RESOURCE_EXHAUSTED,
  // 413 at the edge: the message is larger than the route allows.
  REQUEST_BODY_TOO_LARGE: GRPC_STATUS.RESOURCE_EXHAUSTED,
  // 414: a malformed request like 400 (gRPC's HTTP table: 400 → INTERNAL).
  URI_TOO_LONG: GRPC_STATUS.INTERNAL,
  DOWNSTREAM_HEADERS_TIMEOUT: GRPC_STATUS.DEADLINE_EXCEEDED,
  DOWNSTREAM_REQUEST_TIMEOUT: GRPC_STATUS.DEADLINE_EXCEEDED,
  STREAM_IDLE_TIMEOUT: GRPC_STATUS.DEADLINE_EXCEEDED,
  DOWNSTREAM_DISCONNECT: GRPC_STATUS.CANCELLED,
};

/**
 * The gRPC status a mesh error of `kind`, answered with HTTP `httpStatus`, is reported as to a gRPC
 * client: the kind's own status where it has one, else `httpToGrpcStatus(httpStatus)`. So NO_ROUTE
 * → UNIMPLEMENTED, NO_HEALTHY_UPSTREAM / UPSTREAM_CONNECT_FAILURE / UPSTREAM_RESET / OVERFLOW /
 * CIRCUIT_OPEN / RATE_LIMITED → UNAVAILABLE, UPSTREAM_TIMEOUT / REQUEST_TIMEOUT and the 408s
 * (DOWNSTREAM_HEADERS_TIMEOUT, DOWNSTREAM_REQUEST_TIMEOUT, STREAM_IDLE_TIMEOUT) → DEADLINE_EXCEEDED,
 * RBAC_DENIED → PERMISSION_DENIED, UNAUTHENTICATED → UNAUTHENTICATED, BAD_REQUEST → INTERNAL,
 * INVALID_BACKEND (500) → UNKNOWN.
 */
export function grpcStatusForError(kind: ErrorKind, httpStatus: number): number {
  return KIND_STATUS[kind] ?? httpToGrpcStatus(httpStatus);
}

const HEX = '0123456789ABCDEF';

/**
 * `message` as a `grpc-message` value (PROTOCOL-HTTP2.md, "Percent-Encoded"): UTF-8 bytes outside
 * the printable ASCII range 0x20–0x7E, and `%` itself, as `%XX` (upper-case hex).
 */
export function encodeGrpcMessage(message: string): string {
  let plain = true;
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return message;
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    if (byte < 0x20 || byte > 0x7e || byte === 0x25) out += `%${HEX[byte >> 4]}${HEX[byte & 15]}`;
    else out += String.fromCharCode(byte);
  }
  return out;
}

/**
 * A `grpc-message` value decoded (the inverse of `encodeGrpcMessage`); a `%` not followed by two
 * hex digits is kept as is, as the spec asks of receivers.
 */
export function decodeGrpcMessage(value: string): string {
  if (!value.includes('%')) return value;
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x25 && /^[0-9A-Fa-f]{2}$/.test(value.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(value.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(value[i] as string, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}
