/**
 * Logging: one pino root logger per process writing JSON lines to stdout through an
 * asynchronous, bounded destination (log-destination.ts: writes never block a request; a blocked
 * or failing destination drops lines and counts them), child loggers per component, and
 * credentials redacted: `authorization`, `proxy-authorization`, `cookie`, `set-cookie` and API-key
 * header values wherever a `headers` object is logged, and the values of credential-like query
 * parameters (`api_key`, `token`, `access_token`, `secret`, `password`, `signature`, ...) in
 * logged paths. The access log subscribes to `weft:request:end` and can be sampled (`sampleRate`
 * in [0, 1]; 0 turns it off, Istio's default).
 */
import pino, { type Logger } from 'pino';
import type { RequestContext } from '../http/context.ts';
import { requestEnd } from './channels.ts';
import { logDestination } from './log-destination.ts';
import { requestSize, responseSize, WORKLOAD_LABEL } from './metrics.ts';

/** Header names whose values never reach a log line. */
export const REDACTED_HEADERS = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'api-key',
];
const REDACTED_PATHS = REDACTED_HEADERS.flatMap((h) => [
  `req.headers["${h}"]`,
  `headers["${h}"]`,
  `res.headers["${h}"]`,
]);

/** Query parameters whose values are credentials (case-insensitive, `-` or `_`). */
const SECRET_PARAM =
  /^(?:api[-_]?key|key|apikey|token|access[-_]?token|id[-_]?token|refresh[-_]?token|auth|secret|client[-_]?secret|password|passwd|pwd|signature|sig|x-amz-signature|x-amz-credential|session|sessionid|code)$/i;

/** `path` with the values of credential-like query parameters replaced by `[REDACTED]`. */
export function redactPath(path: string): string {
  const q = path.indexOf('?');
  if (q < 0) return path;
  const query = path
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = eq < 0 ? pair : pair.slice(0, eq);
      let decoded = name;
      try {
        decoded = decodeURIComponent(name);
      } catch {
        // keep the raw name
      }
      return eq >= 0 && SECRET_PARAM.test(decoded) ? `${name}=[REDACTED]` : pair;
    })
    .join('&');
  return `${path.slice(0, q + 1)}${query}`;
}

export type { Logger } from 'pino';

/** Creates the process's root logger; `level` as pino names it (info, debug, ...). */
export function createLogger(level = 'info', sync = false): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      redact: REDACTED_PATHS,
    },
    logDestination(1, sync),
  );
}

/**
 * Subscribes an access log to finished requests; returns the unsubscribe function.
 * One JSON line per logged request (`component: "access"`): listener, method, authority, path
 * and query (credential query values redacted), status, flags, duration_ms (first byte in to last byte out),
 * bytes_received / bytes_sent (request and response body sizes as in docs/metrics.md), the source
 * (client address, SPIFFE principal) and destination (route, cluster, upstream host, the picked
 * endpoint's workload and principal), attempts, request id and trace id.
 */
export function startAccessLog(logger: Logger, sampleRate: number): () => void {
  if (sampleRate <= 0) return () => {};
  const log = logger.child({ component: 'access' });
  const onEnd = (message: unknown): void => {
    if (sampleRate < 1 && Math.random() >= sampleRate) return;
    const ctx = message as RequestContext;
    const url = ctx.req.url ?? '';
    const query = url.indexOf('?');
    const path = ctx.routeRequest && `${ctx.routeRequest.path}${query >= 0 ? url.slice(query) : ''}`;
    const peer = ctx.upstreamEndpoint;
    const bytesReceived = requestSize(ctx);
    log.info({
      listener: ctx.listener.name,
      method: ctx.req.method,
      authority: ctx.routeRequest?.host,
      path: path === undefined ? undefined : redactPath(path),
      status: ctx.status,
      flags: ctx.flags || '-',
      duration_ms: Math.round(ctx.durationMs * 1000) / 1000,
      bytes_received: bytesReceived >= 0 ? bytesReceived : undefined,
      bytes_sent: responseSize(ctx),
      upstream_host: ctx.upstreamHost || undefined,
      route: ctx.routeName || undefined,
      cluster: ctx.clusterName || undefined,
      source_principal: ctx.sourcePrincipal || undefined,
      destination_workload: peer?.labels[WORKLOAD_LABEL] ?? peer?.labels.app,
      destination_principal: peer?.identity || undefined,
      attempts: ctx.attempts,
      client: ctx.clientAddress,
      request_id: ctx.requestId,
      trace_id: ctx.traceId,
    });
  };
  requestEnd.subscribe(onEnd);
  return () => requestEnd.unsubscribe(onEnd);
}
