/**
 * Benchmark upstream: a plain Node HTTP/1.1 server on 127.0.0.1 (port 0) that answers every request
 * with the same 1 KiB body, keep-alive on. Run as a child of `run.ts` (over an IPC channel) so its
 * CPU is not mixed with the harness; it reports `{ type: 'listening', port }` once bound.
 *
 * The keep-alive timeout is raised well above the proxies' idle pool timeouts so that no proxy
 * races a connection the upstream is closing between runs (Node's default is 5 s).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface UpstreamListening {
  readonly type: 'listening';
  readonly port: number;
}

export const BODY_BYTES = 1024;

export function isUpstreamListening(message: unknown): message is UpstreamListening {
  return (
    typeof message === 'object' &&
    message !== null &&
    (message as { type?: unknown }).type === 'listening' &&
    typeof (message as { port?: unknown }).port === 'number'
  );
}

if (import.meta.main) {
  const body = Buffer.alloc(BODY_BYTES, 'x');
  const server = createServer((req, res) => {
    // Drain any request body before answering so the connection stays reusable.
    req.resume();
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BODY_BYTES });
    res.end(body);
  });
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 130_000;
  server.requestTimeout = 0;
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as AddressInfo;
    const message: UpstreamListening = { type: 'listening', port };
    if (process.send) process.send(message);
    else process.stdout.write(`listening on http://127.0.0.1:${port}/\n`);
  });
  const stop = (): void => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // The parent going away (IPC closed) ends us too.
  process.on('disconnect', stop);
}
