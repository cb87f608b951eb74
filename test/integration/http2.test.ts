/**
 * HTTP/2 end to end through real `weft sidecar` processes, with clients no one here wrote (curl,
 * h2load) and node:http2 as the raw client where frames matter (trailers, Trailers-Only, resets).
 *
 *   client ─h2c / HTTP/1.1─▶ web (outbound) ══mTLS, h2 by ALPN══▶ api (inbound STRICT) ─▶ app1 (HTTP/1.1)
 *                                                                                   └─▶ app2 (h2c)
 *                              web (outbound) ─h2c─▶ app2 (cluster `direct`, protocol HTTP2)
 *   curl --http2 (client certificate) ─TLS, ALPN h2─▶ api (inbound)
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import {
  type ClientHttp2Session,
  connect,
  constants,
  createServer as createH2Server,
  type Http2Server,
  type IncomingHttpHeaders,
} from 'node:http2';
import { type AddressInfo, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bootstrap } from '../../sidecar/proxy/config/types.ts';
import { curl } from '../support/curl.ts';
import { pollUntil } from '../support/mesh.ts';
import { createCa, spiffeIdOf, type TestCa, writeCertKey } from '../support/pki.ts';
import { type RunningSidecar, startSidecar } from '../support/sidecar.ts';

const TD = 'test.local';
const ID = { api: spiffeIdOf(TD, 'api'), web: spiffeIdOf(TD, 'web'), curl: spiffeIdOf(TD, 'curl') };

let dir = '';
let mesh: TestCa;
let rootFile = '';
const files: Record<string, { cert: string; key: string }> = {};
let app1: Server;
let app2: Http2Server;
let app3: Http2Server;
/** app3: sessions opened, and the most streams seen open at once on one session. */
const app3Stats = { sessions: 0, maxOpen: 0, goaways: 0 };
let api: RunningSidecar;
let web: RunningSidecar;

/** What an app saw: its HTTP version, the request headers, and the request body. */
interface Seen {
  version: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function portOf(server: Server | Http2Server): number {
  return (server.address() as AddressInfo).port;
}

/**
 * HTTP/1.1 app: answers every request with what it saw, as JSON; `/break-after-head` sends a head
 * announcing 1000 bytes, 10 of them, and closes the connection.
 */
function startApp1(): Promise<Server> {
  const server = createHttpServer((req, res) => {
    if (req.url === '/break-after-head') {
      res.writeHead(200, { 'content-length': 1000 });
      res.write('0123456789', () => res.socket?.destroy());
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const seen: Seen = {
        version: req.httpVersion,
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(seen));
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/**
 * h2c app (node:http2 core API): `/trailers` answers a body then trailers, `/trailers-only` one
 * HEADERS frame with END_STREAM carrying `grpc-status`, `/echo-trailers` sends the request's
 * trailers back as response trailers; anything else answers what it saw, as JSON.
 */
function startApp2(): Promise<Http2Server> {
  const server = createH2Server();
  server.on('stream', (stream, headers) => {
    const path = headers[':path'];
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    if (path === '/trailers-only') {
      stream.respond(
        { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '5', 'grpc-message': 'nope' },
        { endStream: true },
      );
      return;
    }
    let requestTrailers: IncomingHttpHeaders = {};
    stream.on('trailers', (t: IncomingHttpHeaders) => {
      requestTrailers = t;
    });
    stream.on('end', () => {
      if (stream.destroyed) return;
      if (path === '/trailers' || path === '/echo-trailers') {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => {
          if (path === '/trailers') stream.sendTrailers({ 'grpc-status': '0', 'x-md': 'v1' });
          else stream.sendTrailers({ 'x-echo': String(requestTrailers['x-checksum'] ?? 'none') });
        });
        stream.end('payload');
        return;
      }
      const seen: Seen = { version: '2.0', headers, body: Buffer.concat(chunks).toString() };
      stream.respond({ ':status': 200, 'content-type': 'application/json' });
      stream.end(JSON.stringify(seen));
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/**
 * h2c app that allows 2 concurrent streams per connection and closes every connection (GOAWAY)
 * after 2 streams: a pool must open more sessions and resend what a GOAWAY left unprocessed.
 */
function startApp3(): Promise<Http2Server> {
  const server = createH2Server({ settings: { maxConcurrentStreams: 2 } });
  server.on('session', (session) => {
    app3Stats.sessions++;
    let streams = 0;
    let open = 0;
    session.on('stream', (stream) => {
      streams++;
      open++;
      app3Stats.maxOpen = Math.max(app3Stats.maxOpen, open);
      stream.on('close', () => {
        open--;
      });
      stream.resume();
      setTimeout(() => {
        if (stream.destroyed) return;
        stream.respond({ ':status': 200 });
        stream.end('limited');
      }, 10);
      if (streams === 2) {
        app3Stats.goaways++;
        session.close();
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function apiBootstrap(): Bootstrap {
  return {
    node: { id: 'api-1', service: 'api', namespace: 'default', workload: 'api-v1' },
    admin: { address: '127.0.0.1', port: 0 },
    listeners: [
      {
        name: 'inbound',
        address: '127.0.0.1',
        port: 0,
        direction: 'INBOUND',
        routeConfigName: 'in',
        tls: { mode: 'STRICT' },
      },
    ],
    routes: [
      {
        name: 'in',
        virtualHosts: [
          {
            name: 'h2app',
            domains: ['h2app'],
            routes: [{ name: 'h2app', route: { clusters: [{ name: 'app2' }] } }],
          },
          {
            name: 'any',
            domains: ['*'],
            routes: [{ name: 'app1', route: { clusters: [{ name: 'app1' }] } }],
          },
        ],
      },
    ],
    clusters: [{ name: 'app1' }, { name: 'app2', protocol: 'HTTP2' }],
    endpoints: [
      { clusterName: 'app1', endpoints: [{ address: '127.0.0.1', port: portOf(app1) }] },
      { clusterName: 'app2', endpoints: [{ address: '127.0.0.1', port: portOf(app2) }] },
    ],
    trustBundle: { trustDomain: TD, rootsPem: [mesh.certPem] },
  };
}

function webBootstrap(apiPort: number): Bootstrap {
  const toApi = { address: '127.0.0.1', port: apiPort, identity: ID.api };
  return {
    node: { id: 'web-1', service: 'web', namespace: 'default', workload: 'web-v1' },
    admin: { address: '127.0.0.1', port: 0 },
    listeners: [
      {
        name: 'outbound',
        address: '127.0.0.1',
        port: 0,
        direction: 'OUTBOUND',
        routeConfigName: 'out',
        // a small reset budget so that the flood test trips it quickly
        limits: { http2MaxResetsPerWindow: 100, http2ResetWindowMs: 10_000 },
      },
    ],
    routes: [
      {
        name: 'out',
        virtualHosts: [
          {
            name: 'direct',
            domains: ['direct'],
            routes: [{ name: 'direct', route: { clusters: [{ name: 'direct' }] } }],
          },
          {
            name: 'h2app',
            domains: ['h2app'],
            routes: [{ name: 'h2app', route: { clusters: [{ name: 'api' }] } }],
          },
          {
            name: 'api',
            domains: ['api'],
            routes: [{ name: 'api', route: { clusters: [{ name: 'api' }] } }],
          },
          {
            name: 'limited',
            domains: ['limited'],
            routes: [{ name: 'limited', route: { clusters: [{ name: 'limited' }] } }],
          },
        ],
      },
    ],
    clusters: [
      { name: 'api', tls: { enabled: true }, protocol: 'HTTP2' },
      { name: 'direct', protocol: 'HTTP2' },
      { name: 'limited', protocol: 'HTTP2' },
    ],
    endpoints: [
      { clusterName: 'api', endpoints: [toApi] },
      { clusterName: 'direct', endpoints: [{ address: '127.0.0.1', port: portOf(app2) }] },
      { clusterName: 'limited', endpoints: [{ address: '127.0.0.1', port: portOf(app3) }] },
    ],
    trustBundle: { trustDomain: TD, rootsPem: [mesh.certPem] },
  };
}

async function metricsOf(s: RunningSidecar): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${s.adminPort}/metrics`);
  return res.text();
}

/** Sum of `weft_requests_total` samples whose labels include every pair of `labels`. */
function requests(metrics: string, labels: Record<string, string>): number {
  let sum = 0;
  for (const line of metrics.split('\n')) {
    if (!line.startsWith('weft_requests_total{')) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
      sum += Number(line.split(' ').pop());
  }
  return sum;
}

function run(
  cmd: string,
  args: readonly string[],
  timeoutMs = 60_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** One request on an h2 session; resolves with the response head, its END_STREAM flag, body and trailers. */
function h2request(
  session: ClientHttp2Session,
  headers: Record<string, string>,
  body?: { data: string; trailers?: Record<string, string> },
): Promise<{ headers: IncomingHttpHeaders; headOnly: boolean; body: string; trailers: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers, {
      endStream: body === undefined,
      waitForTrailers: body?.trailers !== undefined,
    });
    let head: IncomingHttpHeaders = {};
    let headOnly = false;
    let trailers: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    req.on('response', (h, flags) => {
      head = h;
      headOnly = (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0;
    });
    req.on('trailers', (t) => {
      trailers = t;
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () =>
      resolve({ headers: head, headOnly, body: Buffer.concat(chunks).toString(), trailers }),
    );
    req.on('error', reject);
    if (body?.trailers !== undefined) {
      const t = body.trailers;
      req.on('wantTrailers', () => req.sendTrailers(t));
    }
    if (body !== undefined) req.end(body.data);
  });
}

/** An HTTP/2 frame (RFC 9113 §4.1). */
function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK integer with an `n`-bit prefix (RFC 7541 §5.1), first byte ORed with `mask`. */
function hpackInt(value: number, n: number, mask: number): Buffer {
  const max = (1 << n) - 1;
  if (value < max) return Buffer.from([mask | value]);
  const out = [mask | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest & 0x7f) | 0x80);
    rest >>= 7;
  }
  out.push(rest);
  return Buffer.from(out);
}

/** A literal header field without indexing, new name (RFC 7541 §6.2.2). */
function literal(name: string, value: string): Buffer {
  return Buffer.concat([
    Buffer.from([0]),
    hpackInt(name.length, 7, 0),
    Buffer.from(name),
    hpackInt(value.length, 7, 0),
    Buffer.from(value),
  ]);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-h2-'));
  mesh = createCa('weft test mesh root');
  rootFile = join(dir, 'root.pem');
  await (await import('node:fs/promises')).writeFile(rootFile, mesh.certPem);
  for (const [name, id] of Object.entries(ID)) files[name] = await writeCertKey(dir, name, mesh.leaf(id));
  app1 = await startApp1();
  app2 = await startApp2();
  app3 = await startApp3();
  const certArgs = (name: string) => ['--cert', files[name]?.cert ?? '', '--key', files[name]?.key ?? ''];
  api = await startSidecar(apiBootstrap(), { extraArgs: certArgs('api') });
  web = await startSidecar(webBootstrap(api.ports.inbound ?? 0), { extraArgs: certArgs('web') });
}, 60_000);

afterAll(async () => {
  await Promise.all([web?.stop(), api?.stop()]);
  app1?.closeAllConnections();
  await new Promise((r) => app1?.close(r));
  await new Promise((r) => app2?.close(r));
  await new Promise((r) => app3?.close(r));
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('downstream HTTP/2', () => {
  it('serves curl --http2-prior-knowledge on the outbound listener; the hop between sidecars is h2, the HTTP/1.1 app sees HTTP/1.1', async () => {
    const before = requests(await metricsOf(api), { reporter: 'destination', request_protocol: 'http/2' });
    const r = await curl(['--http2-prior-knowledge', '-H', 'Host: api', `${web.url('outbound')}/hello`]);
    expect(r.exitCode).toBe(0);
    expect(r.status).toBe(200);
    const seen = JSON.parse(r.body) as Seen;
    expect(seen.version).toBe('1.1');
    expect(seen.headers.host).toBe('api');
    const webMetrics = await metricsOf(web);
    expect(requests(webMetrics, { reporter: 'source', request_protocol: 'http/2' })).toBeGreaterThan(0);
    await pollUntil('the inbound to count an http/2 request', async () =>
      requests(await metricsOf(api), { reporter: 'destination', request_protocol: 'http/2' }) > before
        ? true
        : undefined,
    );
  });

  it('an upstream breaking after its head: the h2 client sees the stream reset with INTERNAL_ERROR, never an end', async () => {
    const session = connect(web.url('outbound'));
    try {
      const outcome = await new Promise<{ status: unknown; ended: boolean; rstCode: number }>((resolve) => {
        const stream = session.request({ ':path': '/break-after-head', ':authority': 'api' });
        let status: unknown;
        let ended = false;
        stream.on('response', (h) => {
          status = h[':status'];
        });
        stream.on('data', () => undefined);
        stream.on('end', () => {
          ended = true;
        });
        stream.on('error', () => undefined);
        stream.on('close', () => resolve({ status, ended, rstCode: stream.rstCode ?? -1 }));
      });
      expect(outcome.status).toBe(200);
      expect(outcome.ended, 'a truncated body must not end cleanly').toBe(false);
      expect(outcome.rstCode).toBe(constants.NGHTTP2_INTERNAL_ERROR);
    } finally {
      session.close();
    }
  });

  it('an HTTP/1.1 client still gets HTTP/1.1 on the same listener, and is carried over h2 between sidecars', async () => {
    const before = requests(await metricsOf(api), { reporter: 'destination', request_protocol: 'http/2' });
    const r = await curl(['--http1.1', '-H', 'Host: api', `${web.url('outbound')}/one`]);
    expect(r.status).toBe(200);
    expect((JSON.parse(r.body) as Seen).version).toBe('1.1');
    expect(
      requests(await metricsOf(web), { reporter: 'source', request_protocol: 'http/1.1' }),
    ).toBeGreaterThan(0);
    await pollUntil('the inbound to count the request as http/2', async () =>
      requests(await metricsOf(api), { reporter: 'destination', request_protocol: 'http/2' }) > before
        ? true
        : undefined,
    );
  });

  it('negotiates h2 by ALPN on the mTLS inbound listener (curl --http2 with a client certificate)', async () => {
    const creds = files.curl as { cert: string; key: string };
    const r = await curl([
      '--http2',
      '--cert',
      creds.cert,
      '--key',
      creds.key,
      '--cacert',
      rootFile,
      '-w',
      '\nversion=%{http_version}',
      `https://127.0.0.1:${api.ports.inbound}/tls`,
    ]);
    expect(r.exitCode).toBe(0);
    expect(r.status).toBe(200);
    expect(r.body).toContain('version=2');
    expect((JSON.parse(r.body.split('\nversion=')[0] ?? '') as Seen).version).toBe('1.1');
  });
});

describe('h2c upstream and trailers', () => {
  it('sends h2c with prior knowledge to an HTTP2 cluster', async () => {
    const r = await curl(['--http1.1', '-H', 'Host: direct', `${web.url('outbound')}/x`]);
    expect(r.status).toBe(200);
    const seen = JSON.parse(r.body) as Seen;
    expect(seen.version).toBe('2.0');
    expect(seen.headers[':authority']).toBe('direct');
    expect(seen.headers.host).toBeUndefined();
  });

  it('never lets a connection-specific field from an HTTP/1.1 client reach an h2 upstream; a chunked body arrives decoded', async () => {
    const r = await curl([
      '--http1.1',
      '-H',
      'Host: direct',
      '-H',
      'Connection: keep-alive, x-hop',
      '-H',
      'x-hop: 1',
      '-H',
      'Keep-Alive: timeout=5',
      '-H',
      'Proxy-Connection: keep-alive',
      '-H',
      'TE: gzip',
      '-H',
      'Transfer-Encoding: chunked',
      '--data-binary',
      'chunked-body',
      `${web.url('outbound')}/hop`,
    ]);
    expect(r.status).toBe(200);
    const seen = JSON.parse(r.body) as Seen;
    for (const name of [
      'connection',
      'keep-alive',
      'proxy-connection',
      'transfer-encoding',
      'upgrade',
      'te',
      'x-hop',
    ]) {
      expect(seen.headers[name], name).toBeUndefined();
    }
    expect(seen.body).toBe('chunked-body');
  });

  it('carries response trailers, Trailers-Only responses and request trailers h2 → sidecar → sidecar → h2 app', async () => {
    const session = connect(web.url('outbound'));
    try {
      const base = { ':authority': 'h2app', 'content-type': 'application/grpc', te: 'trailers' };
      const withTrailers = await h2request(
        session,
        { ...base, ':method': 'POST', ':path': '/trailers' },
        { data: 'x' },
      );
      expect(withTrailers.headers[':status']).toBe(200);
      expect(withTrailers.body).toBe('payload');
      expect(withTrailers.trailers).toMatchObject({ 'grpc-status': '0', 'x-md': 'v1' });

      const only = await h2request(
        session,
        { ...base, ':method': 'POST', ':path': '/trailers-only' },
        { data: 'x' },
      );
      expect(only.headOnly).toBe(true);
      expect(only.headers['grpc-status']).toBe('5');
      expect(only.headers['grpc-message']).toBe('nope');

      const echoed = await h2request(
        session,
        { ...base, ':method': 'POST', ':path': '/echo-trailers' },
        { data: 'body', trailers: { 'x-checksum': 'abc123' } },
      );
      expect(echoed.trailers['x-echo']).toBe('abc123');
    } finally {
      session.close();
    }
  });

  it('passes response trailers to an HTTP/1.1 client that sent TE: trailers, as chunked trailers', async () => {
    const r = await run('curl', [
      '-sS',
      '--raw',
      '--http1.1',
      '-H',
      'Host: direct',
      '-H',
      'TE: trailers',
      '-X',
      'POST',
      '-d',
      'x',
      `${web.url('outbound')}/trailers`,
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('payload');
    expect(r.stdout).toMatch(/0\r\n(?:[^\r]*\r\n)*x-md: v1\r\n/);
  });
});

describe('HTTP/2 upstream sessions', () => {
  it("respects the peer's max concurrent streams with more sessions, and resends what a GOAWAY left unprocessed", async () => {
    const session = connect(web.url('outbound'));
    try {
      const replies = await Promise.all(
        Array.from({ length: 40 }, () =>
          h2request(session, { ':method': 'GET', ':path': '/l', ':authority': 'limited' }),
        ),
      );
      const seen = replies.map((r) => `${r.headers[':status']} ${r.body}`);
      expect(seen.filter((r) => r !== '200 limited')).toEqual([]);
    } finally {
      session.close();
    }
    expect(app3Stats.maxOpen).toBeLessThanOrEqual(2);
    expect(app3Stats.goaways).toBeGreaterThanOrEqual(1);
    expect(app3Stats.sessions).toBeGreaterThanOrEqual(2);
  });
});

describe('HTTP/2 load and limits', () => {
  it('h2load: 2000 requests, 100 streams on 10 connections, through two sidecars with 0 errors', async () => {
    const r = await run(
      'h2load',
      ['-n', '2000', '-c', '10', '-m', '10', '-H', ':authority: api', `${web.url('outbound')}/load`],
      120_000,
    );
    console.log(
      `[http2] h2load: ${r.stdout
        .split('\n')
        .filter((l) => /finished in|requests:|time for request/.test(l))
        .join(' | ')}`,
    );
    expect(r.stdout).toContain('2000 succeeded, 0 failed, 0 errored');
    expect(r.stdout).toMatch(/status codes: 2000 2xx/);
  }, 150_000);

  it('closes a connection that sends a CONTINUATION flood (an endless header block); other clients are unaffected', async () => {
    const port = Number(new URL(web.url('outbound')).port);
    const socket = tcpConnect(port, '127.0.0.1');
    socket.on('error', () => {});
    const received: Buffer[] = [];
    socket.on('data', (c: Buffer) => received.push(c));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    // preface, empty SETTINGS, then HEADERS for stream 1 without END_HEADERS: GET / on `direct`
    const block = Buffer.concat([Buffer.from([0x82, 0x84, 0x86]), literal(':authority', 'direct')]);
    socket.write(
      Buffer.concat([
        Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
        frame(4, 0, 0, Buffer.alloc(0)),
        frame(1, 0x1, 1, block),
      ]),
    );
    const continuation = frame(9, 0, 1, literal('x-flood', 'a'.repeat(1000)));
    let sent = 0;
    for (; sent < 2000 && !socket.destroyed; sent++) {
      // wait for the kernel to take more (or for the close): a 1 ms pause let node queue the whole
      // flood in memory when the server's close came late, which made `sent` reach 2000
      if (!socket.write(continuation)) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            socket.off('drain', done);
            socket.off('close', done);
            resolve();
          };
          socket.once('drain', done);
          socket.once('close', done);
        });
      }
    }
    // a well-behaved client meanwhile
    const good = connect(web.url('outbound'));
    const ok = await h2request(good, { ':method': 'GET', ':path': '/fine', ':authority': 'direct' });
    good.close();
    expect(ok.headers[':status']).toBe(200);
    const closedByServer = await Promise.race([
      closed.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 5000)),
    ]);
    socket.destroy();
    // node:http2 ends the connection (GOAWAY, then close; the unread flood behind it makes the
    // kernel reset the TCP connection, so the GOAWAY itself may not arrive): never a response
    // HEADERS for stream 1, and the flood stops early
    const bytes = Buffer.concat(received);
    const types: number[] = [];
    for (let i = 0; i + 9 <= bytes.length; ) {
      const length = bytes.readUIntBE(i, 3);
      types.push(bytes[i + 3] as number);
      i += 9 + length;
    }
    expect(types).not.toContain(1);
    expect(closedByServer || types.includes(3) || types.includes(7)).toBe(true);
    expect(sent).toBeLessThan(2000);
  }, 30_000);

  it('closes a rapid-reset flood connection with GOAWAY ENHANCE_YOUR_CALM while a parallel client sees no errors', async () => {
    const attacker = connect(web.url('outbound'));
    const goaway = new Promise<number>((resolve) => attacker.once('goaway', (code: number) => resolve(code)));
    const closed = new Promise<void>((resolve) => attacker.once('close', () => resolve()));
    attacker.on('error', () => {});
    const good = connect(web.url('outbound'));
    let goodErrors = 0;
    let goodOk = 0;
    const goodRun = (async () => {
      for (let i = 0; i < 100; i++) {
        try {
          const r = await h2request(good, { ':method': 'GET', ':path': '/ok', ':authority': 'direct' });
          if (Number(r.headers[':status']) === 200) goodOk++;
          else goodErrors++;
        } catch {
          goodErrors++;
        }
      }
    })();
    let sent = 0;
    await new Promise<void>((resolve) => attacker.once('connect', () => resolve()));
    while (!attacker.destroyed && !attacker.closed && sent < 5000) {
      try {
        const s = attacker.request({ ':method': 'GET', ':path': '/flood', ':authority': 'direct' });
        s.on('error', () => {});
        s.close(constants.NGHTTP2_CANCEL);
        sent++;
      } catch {
        break;
      }
      if (sent % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    expect(await goaway).toBe(constants.NGHTTP2_ENHANCE_YOUR_CALM);
    await closed;
    await goodRun;
    good.close();
    expect(goodErrors).toBe(0);
    expect(goodOk).toBe(100);
    expect(sent).toBeLessThan(5000);
  }, 60_000);
});
