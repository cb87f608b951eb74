/**
 * A small example upstream: answers every request with JSON describing what it received
 * (method, url, headers), so a request's path through a sidecar is visible with curl.
 *
 *   node deploy/examples/echo-server.ts [port]   (default 8080, listens on 127.0.0.1)
 */
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? process.env.PORT ?? 8080);
const name = process.env.NAME ?? 'echo';

createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = JSON.stringify(
      {
        server: name,
        method: req.method,
        url: req.url,
        headers: req.headers,
        bodyBytes: Buffer.concat(chunks).length,
      },
      null,
      2,
    );
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(`${body}\n`);
  });
}).listen(port, '127.0.0.1', () => {
  process.stdout.write(`${name} listening on http://127.0.0.1:${port}\n`);
});
