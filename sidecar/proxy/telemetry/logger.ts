/**
 * Logging: one pino root logger per process writing JSON lines to stdout through an
 * asynchronous, bounded destination (log-destination.ts: writes never block a request; a blocked
 * or failing destination drops lines and counts them), child loggers per component, and
 * `authorization` / `cookie` values redacted. The access log subscribes to `weft:request:end`
 * and can be sampled (`sampleRate` in [0, 1]; 0 turns it off, Istio's default).
 */
import pino, { type Logger } from 'pino';
import type { RequestContext } from '../http/context.ts';
import { requestEnd } from './channels.ts';
import { logDestination } from './log-destination.ts';

export type { Logger } from 'pino';

/** Creates the process's root logger; `level` as pino names it (info, debug, ...). */
export function createLogger(level = 'info', sync = false): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      redact: [
        'req.headers.authorization',
        'req.headers.cookie',
        'req.headers["x-api-key"]',
        'headers.authorization',
        'headers.cookie',
        'headers["x-api-key"]',
      ],
    },
    logDestination(1, sync),
  );
}

/**
 * Subscribes an access log to finished requests; returns the unsubscribe function.
 * One JSON line per logged request: method, authority, path, status, flags, duration_ms,
 * upstream host, route, cluster, request id, trace id.
 */
export function startAccessLog(logger: Logger, sampleRate: number): () => void {
  if (sampleRate <= 0) return () => {};
  const log = logger.child({ component: 'access' });
  const onEnd = (message: unknown): void => {
    if (sampleRate < 1 && Math.random() >= sampleRate) return;
    const ctx = message as RequestContext;
    log.info({
      listener: ctx.listener.name,
      method: ctx.req.method,
      authority: ctx.routeRequest?.host,
      path: ctx.routeRequest?.path,
      status: ctx.status,
      flags: ctx.flags || '-',
      duration_ms: Math.round(ctx.durationMs * 1000) / 1000,
      upstream_host: ctx.upstreamHost || undefined,
      route: ctx.routeName || undefined,
      cluster: ctx.clusterName || undefined,
      attempts: ctx.attempts,
      client: ctx.clientAddress,
      request_id: ctx.requestId,
      trace_id: ctx.traceId,
    });
  };
  requestEnd.subscribe(onEnd);
  return () => requestEnd.unsubscribe(onEnd);
}
