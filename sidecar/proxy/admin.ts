/**
 * The admin listener (sidecar default 127.0.0.1:15000, as in Istio):
 * `GET /metrics` Prometheus text; `GET /ready` 200 once the first config is applied and until
 * draining starts, else 503; `GET /healthz` 200 while the process runs; `GET /config_dump` the
 * config in force as JSON. Anything else is 404; methods other than GET/HEAD are 405.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface AdminSources {
  ready(): boolean;
  metrics(): Promise<{ contentType: string; body: string }>;
  configDump(): unknown;
}

export class AdminServer {
  readonly #server: Server;
  constructor(sources: AdminSources) {
    this.#server = createServer((req, res) => {
      const send = (status: number, body: string, type = 'text/plain; charset=utf-8') => {
        res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
        res.end(req.method === 'HEAD' ? undefined : body);
      };
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        send(405, 'method not allowed\n');
        return;
      }
      const path = (req.url ?? '/').split('?')[0];
      switch (path) {
        case '/healthz':
          send(200, 'ok\n');
          return;
        case '/ready':
          if (sources.ready()) send(200, 'ready\n');
          else send(503, 'not ready\n');
          return;
        case '/config_dump':
          send(200, `${JSON.stringify(sources.configDump(), null, 2)}\n`, 'application/json');
          return;
        case '/metrics':
          sources.metrics().then(
            ({ contentType, body }) => send(200, body, contentType),
            (err: unknown) => send(500, `metrics failed: ${String(err)}\n`),
          );
          return;
        default:
          send(404, 'not found\n');
      }
    });
  }

  /** Binds the admin socket; resolves with the bound port. */
  async listen(address: string, port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ host: address, port }, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    return (this.#server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
