/**
 * Test harness: real HTTP upstream servers on 127.0.0.1, port 0, with a scriptable handler.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Upstream {
  readonly server: Server;
  readonly port: number;
  /** Requests seen so far (method, url, headers as received). */
  readonly seen: IncomingMessage[];
  close(): Promise<void>;
}

/** Starts an upstream; `handler` defaults to 200 with a JSON echo of method, url and headers. */
export async function startUpstream(
  handler?: (req: IncomingMessage, res: ServerResponse) => void,
  configure?: (server: Server) => void,
): Promise<Upstream> {
  const seen: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    seen.push(req);
    if (handler) {
      handler(req, res);
      return;
    }
    req.resume();
    req.on('end', () => {
      const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body);
    });
  });
  configure?.(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
