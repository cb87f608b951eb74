/**
 * A demo service for `npm start`: answers `GET /` with JSON naming itself and, when it has an
 * upstream, what the upstream answered. It calls its upstream through its own sidecar's outbound
 * listener with `Host: <upstream service>`, as an app in the mesh does.
 *
 *   node deploy/examples/demo-app.ts --name api --version v1 --port 18200 \
 *     [--upstream store --outbound 127.0.0.1:15201]
 */
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { request } from 'undici';

const { values } = parseArgs({
  options: {
    name: { type: 'string' },
    version: { type: 'string', default: 'v1' },
    port: { type: 'string' },
    upstream: { type: 'string' },
    outbound: { type: 'string' },
  },
});
const name = values.name ?? 'app';
const version = values.version ?? 'v1';
const port = Number(values.port ?? 8080);

createServer((req, res) => {
  req.resume();
  const reply = (status: number, body: unknown) => {
    const text = `${JSON.stringify(body)}\n`;
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  if (!values.upstream || !values.outbound) {
    reply(200, { service: name, version });
    return;
  }
  request(`http://${values.outbound}/`, {
    headers: {
      host: values.upstream,
      'x-request-id': String(req.headers['x-request-id'] ?? ''),
      traceparent: String(req.headers.traceparent ?? ''),
    },
  }).then(
    async (up) => {
      const text = await up.body.text();
      let downstream: unknown = text;
      try {
        downstream = JSON.parse(text);
      } catch {
        // not JSON: keep the text
      }
      reply(up.statusCode < 500 ? 200 : 502, {
        service: name,
        version,
        downstream,
        downstreamStatus: up.statusCode,
      });
    },
    (err: unknown) => reply(502, { service: name, version, error: String(err) }),
  );
}).listen(port, '127.0.0.1');
