/**
 * The control plane's admin HTTP API (default 127.0.0.1:15080), the server behind the `weft` CLI.
 *
 * - Every route but `GET /healthz` needs `Authorization: Bearer <token>` (401 with
 *   `WWW-Authenticate: Bearer` otherwise; constant-time comparison).
 * - Replies are JSON; failures are `{ error }` (plus `errors` for 422) with a fitting status:
 *   400 bad parameter, 401, 404, 405, 409 conflict, 413 body too large, 422 invalid documents,
 *   500 unexpected (logged).
 * - Routes: see `resource-routes.ts` (apply, resources, delete, diff) and `proxy-routes.ts`
 *   (proxies, proxy config, rollout), and `ca-routes.ts` (tokens, CA; 503 when the CA is off).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { type Store, StoreUnavailableError } from '../store/types.ts';
import type { MeshState } from '../translate/types.ts';
import { bearerChecker } from './auth.ts';
import { type CaRouteDeps, caRoutes } from './ca-routes.ts';
import { ApiError, sendJson } from './http.ts';
import { proxyRoutes } from './proxy-routes.ts';
import { resourceRoutes } from './resource-routes.ts';
import { match, type Route } from './router.ts';

export interface AdminApiOptions {
  readonly store: Store;
  /** The bearer token clients must present. */
  readonly token: string;
  /** The mesh state the control plane serves now (for route status and proxy config). */
  readonly mesh: { state(): MeshState };
  readonly address: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly logger?: Logger;
  /** The mesh CA and join tokens (without them the identity routes answer 503). */
  readonly identity?: CaRouteDeps;
}

export interface AdminApi {
  /** The bound port. */
  readonly port: number;
  /** Stops listening and closes open connections (pending rollout waits are aborted). */
  close(): Promise<void>;
}

/** Starts the admin API; resolves once listening. Rejects when the address cannot be bound. */
export async function startAdminApi(options: AdminApiOptions): Promise<AdminApi> {
  const log = options.logger?.child({ component: 'admin-api' });
  const authorized = bearerChecker(options.token);
  const routes: Route[] = [
    ...resourceRoutes(options),
    ...proxyRoutes(options),
    ...caRoutes(options.identity),
  ];
  const inflight = new Set<AbortController>();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://admin.invalid');
    const method = req.method ?? 'GET';
    if (url.pathname === '/healthz' && (method === 'GET' || method === 'HEAD')) {
      sendJson(res, 200, { status: 'ok' });
      return;
    }
    if (!authorized(req.headers)) {
      throw new ApiError(401, 'unauthorized: send Authorization: Bearer <admin token>', {
        headers: { 'www-authenticate': 'Bearer realm="weft"' },
      });
    }
    const { handler, params } = match(routes, method, url.pathname);
    const abort = new AbortController();
    inflight.add(abort);
    const onClose = (): void => {
      if (!res.writableFinished) abort.abort();
    };
    res.once('close', onClose);
    try {
      const body = await handler({ req, res, url, params, signal: abort.signal });
      sendJson(res, 200, body);
    } finally {
      inflight.delete(abort);
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof ApiError) {
        sendJson(res, err.status, err.body(), err.headers);
        return;
      }
      if (err instanceof StoreUnavailableError) {
        // etcd unreachable or without quorum: reads still work, writes cannot (store/health.ts).
        sendJson(
          res,
          503,
          { error: `${err.message}; the control plane is read-only until the store is back` },
          {
            'retry-after': '5',
          },
        );
        return;
      }
      log?.error({ err, method: req.method, url: req.url }, 'admin API request failed');
      sendJson(res, 500, { error: `internal error: ${(err as Error).message ?? String(err)}` });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: options.address, port: options.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  log?.info({ address: options.address, port }, 'admin API ready');

  return {
    port,
    async close() {
      for (const abort of inflight) abort.abort();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
