/**
 * A scriptable HTTP upstream in its own process (so that the test process's load never slows it
 * and it can be SIGKILLed like a real service): `node upstream-process.ts <mode> <port>` prints
 * `listening <port>` once bound on 127.0.0.1 (port 0 picks one).
 *
 * Modes: `ok` (200 at once, 16-byte body); `slow` (200 after 200 ms); `stream` (headers at once,
 * then 5 body chunks 40 ms apart: a kill lands mid-response); `hang` (reads the request, never
 * answers); `closing` (200 at once, keep-alive timeout 1 s, and every second every idle
 * connection is closed).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const [mode = 'ok', portArg = '0'] = process.argv.slice(2);
const body = 'ok upstream 200\n';
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    switch (mode) {
      case 'slow':
        setTimeout(() => res.end(body), 200);
        return;
      case 'stream': {
        res.writeHead(200, { 'content-type': 'text/plain' });
        let n = 0;
        const timer = setInterval(() => {
          res.write(`chunk ${n}\n`);
          if (++n === 5) {
            clearInterval(timer);
            res.end();
          }
        }, 40);
        res.on('close', () => clearInterval(timer));
        return;
      }
      case 'hang':
        return;
      default:
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
        res.end(body);
    }
  });
});
if (mode === 'closing') {
  server.keepAliveTimeout = 1000;
  setInterval(() => server.closeIdleConnections(), 1000);
}
server.listen(Number(portArg), '127.0.0.1', () => {
  console.log(`listening ${(server.address() as AddressInfo).port}`);
});
