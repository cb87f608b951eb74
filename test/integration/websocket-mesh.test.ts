/**
 * WebSocket (HTTP/1.1 Upgrade, RFC 6455) through the mesh: client → web's outbound listener →
 * mTLS → chat's inbound listener → a real WebSocket echo server (npm `ws`), with a real control
 * plane (`--tls`) and real sidecars. The client is `ws` too (it can set `Host: chat`).
 *
 * - text and binary messages both ways, the close handshake (code and reason) end to end;
 * - a non-101 answer (403 from the app) reaches the client as an HTTP response;
 * - `Connection: keep-alive, Upgrade` (a token list) upgrades;
 * - the upgrade is recorded with response_code 101 on both sidecars once the connection ends;
 * - through the edge gateway (`weft gateway`, Gateway + HTTPRoute from the control plane): client →
 *   the gateway's HTTP listener → mTLS (ALPN http/1.1) → chat's inbound listener → the echo server,
 *   with the same messages, the close handshake, and 101 counted by the gateway and by chat.
 * Every process is stopped by pid in `afterAll`.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { curl } from '../support/curl.ts';
import {
  type ControlPlane,
  freePorts,
  joinToken,
  type MeshSidecar,
  pollUntil,
  startControlPlane,
  startMeshSidecar,
  stopAll,
  WeftProcess,
  weft,
} from '../support/mesh.ts';

function sample(metrics: string, name: string, labels: Readonly<Record<string, string>>): number {
  let total = 0;
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

let root = '';
let cp: ControlPlane | undefined;
let app: Server | undefined;
let wss: WebSocketServer | undefined;
const sidecars: MeshSidecar[] = [];
let web: MeshSidecar;
let chat: MeshSidecar;
let outboundPort = 0;
let gateway: WeftProcess | undefined;
/** The port of the gateway's HTTP listener (Gateway `edge`, listener `http`). */
let gatewayPort = 0;
let gatewayAdmin = '';

/** The chat app: a `ws` echo server on /echo, 403 for upgrades to /forbidden, 200 for plain GETs. */
async function startChatApp(): Promise<number> {
  wss = new WebSocketServer({ noServer: true });
  wss.on('connection', (socket) => {
    socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
  });
  app = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('plain');
  });
  app.on('upgrade', (req, socket, head) => {
    if (req.url !== '/echo') {
      socket.end(
        'HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 9\r\nconnection: close\r\n\r\nforbidden',
      );
      return;
    }
    wss?.handleUpgrade(req, socket, head, (ws) => wss?.emit('connection', ws, req));
  });
  await new Promise<void>((resolve) => app?.listen(0, '127.0.0.1', resolve));
  return (app.address() as AddressInfo).port;
}

async function meshSidecar(service: string, appPort: number, outbound?: number): Promise<MeshSidecar> {
  const plane = cp as ControlPlane;
  const [o, inboundPort] = (await freePorts(2)) as [number, number];
  const started = await startMeshSidecar({
    controlPlane: plane.discoveryAddress,
    service,
    workload: `${service}-v1`,
    appPort,
    outboundPort: outbound ?? o,
    inboundPort,
    dataDir: join(root, 'sidecars', service),
    caBundle: plane.caBundle as string,
    token: await joinToken(plane, service),
  });
  sidecars.push(started);
  return started;
}

function open(path: string): WebSocket {
  return new WebSocket(`ws://127.0.0.1:${outboundPort}${path}`, { headers: { host: 'chat' } });
}

/** Starts `weft gateway --gateway edge` (listener port 80 bound to 0); learns its ports from its logs. */
async function startEdgeGateway(plane: ControlPlane): Promise<void> {
  gateway = new WeftProcess('gateway edge', [
    'gateway',
    '--control-plane',
    plane.discoveryAddress,
    '--gateway',
    'edge',
    '--port',
    '80=0',
    '--admin-port',
    '0',
    '--data-dir',
    join(root, 'gateways'),
    '--drain-delay',
    '0',
    '--ca-bundle',
    plane.caBundle as string,
    '--token',
    await joinToken(plane, 'edge'),
  ]);
  const admin = await gateway.waitForLog('"admin ready"', (e) => e.msg === 'admin ready');
  gatewayAdmin = `http://127.0.0.1:${admin.port as number}`;
  await gateway.waitForLog('"gateway ready"', (e) => e.msg === 'gateway ready', 20_000);
  gatewayPort = gateway.logs.find((e) => e.msg === 'listener ready' && e.name === 'gateway-80')
    ?.port as number;
  expect(gatewayPort, gateway.describe()).toBeGreaterThan(0);
}

/** Waits for `ws` to open (rejects on an error or an unexpected response). */
function opened(ws: WebSocket): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
}

/** Text and binary echo, then the close handshake with code 4000 "bye". */
async function echoAndClose(ws: WebSocket, text: string): Promise<void> {
  ws.send(text);
  const echoedText = await nextMessage(ws);
  expect(echoedText.isBinary).toBe(false);
  expect(echoedText.data.toString()).toBe(text);
  const binary = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7) % 256));
  ws.send(binary);
  const echoed = await nextMessage(ws);
  expect(echoed.isBinary).toBe(true);
  expect(Buffer.compare(echoed.data, binary)).toBe(0);
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  ws.close(4000, 'bye');
  expect(await closed).toEqual({ code: 4000, reason: 'bye' });
}

/** The next message of `ws`, with whether it was binary. */
function nextMessage(ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve, reject) => {
    ws.once('message', (data, isBinary) => resolve({ data: data as Buffer, isBinary }));
    ws.once('error', reject);
  });
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'weft-ws-mesh-'));
  const appPort = await startChatApp();
  cp = await startControlPlane({ dataDir: join(root, 'control-plane'), tls: true });
  await writeFile(
    join(root, 'services.yaml'),
    `
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: chat }
spec:
  ports: [{ name: http, port: 80 }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: edge }
spec:
  gatewayClassName: weft
  listeners:
    - { name: http, port: 80, protocol: HTTP }
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: chat-public }
spec:
  parentRefs: [{ name: edge, sectionName: http }]
  rules:
    - matches: [{ path: { type: PathPrefix, value: /chat } }]
      filters:
        - type: URLRewrite
          urlRewrite: { path: { type: ReplacePrefixMatch, replacePrefixMatch: / } }
      backendRefs: [{ name: chat, port: 80 }]
`,
  );
  const applied = await weft(['apply', '-f', join(root, 'services.yaml')], {
    env: { WEFT_SERVER: cp.server, WEFT_TOKEN: cp.token },
  });
  expect(applied.code, applied.stderr).toBe(0);
  [outboundPort] = (await freePorts(1)) as [number];
  const [webApp] = (await freePorts(1)) as [number];
  const started = await Promise.allSettled([
    meshSidecar('web', webApp, outboundPort),
    meshSidecar('chat', appPort),
    startEdgeGateway(cp),
  ]);
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  [web, chat] = started.slice(0, 2).map((r) => (r as PromiseFulfilledResult<MeshSidecar>).value) as [
    MeshSidecar,
    MeshSidecar,
  ];
  await pollUntil(
    'web → chat to answer 200',
    async () => {
      const res = await request(`http://127.0.0.1:${outboundPort}/`, { headers: { host: 'chat' } });
      await res.body.text();
      return res.statusCode === 200 ? true : undefined;
    },
    { timeoutMs: 20_000 },
  );
  // chat's endpoint may reach the gateway a snapshot after its first one: wait for a 200.
  await pollUntil(
    'gateway → chat to answer 200',
    async () => {
      const res = await request(`http://127.0.0.1:${gatewayPort}/chat/`);
      await res.body.text();
      return res.statusCode === 200 ? true : undefined;
    },
    { timeoutMs: 20_000 },
  );
}, 60_000);

afterAll(async () => {
  await stopAll([...sidecars, ...(gateway === undefined ? [] : [gateway])]);
  await cp?.stop();
  wss?.close();
  app?.closeAllConnections();
  await new Promise<void>((resolve) => (app ? app.close(() => resolve()) : resolve()));
  if (root !== '') await rm(root, { recursive: true, force: true });
}, 30_000);

describe('WebSocket through two sidecars with mTLS', () => {
  it('carries text and binary messages both ways and the close handshake', async () => {
    const ws = open('/echo');
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.send('hello through the mesh');
    const text = await nextMessage(ws);
    expect(text.isBinary).toBe(false);
    expect(text.data.toString()).toBe('hello through the mesh');
    const binary = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 256));
    ws.send(binary);
    const echoed = await nextMessage(ws);
    expect(echoed.isBinary).toBe(true);
    expect(Buffer.compare(echoed.data, binary)).toBe(0);
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    ws.close(4000, 'bye');
    expect(await closed).toEqual({ code: 4000, reason: 'bye' });

    const labels = { response_code: '101' };
    await pollUntil('both sidecars to record the upgrade with status 101', async () => {
      const [w, c] = await Promise.all([web.metrics(), chat.metrics()]);
      return sample(w, 'weft_requests_total', { ...labels, reporter: 'source' }) >= 1 &&
        sample(c, 'weft_requests_total', {
          ...labels,
          reporter: 'destination',
          connection_security_policy: 'mutual_tls',
        }) >= 1
        ? true
        : undefined;
    });
  });

  it('relays a non-101 answer (403 from the app) as HTTP', async () => {
    const ws = open('/forbidden');
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      ws.once('unexpected-response', (_req, response) => {
        let body = '';
        response.on('data', (c: Buffer) => {
          body += c.toString();
        });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      });
      ws.once('open', () => reject(new Error('upgraded')));
    });
    expect(res).toEqual({ status: 403, body: 'forbidden' });
  });

  it('ignores an upgrade to another protocol (h2c): the request is answered as plain HTTP', async () => {
    // curl's own h2c upgrade offer (RFC 7540 §3.2): Connection: Upgrade, HTTP2-Settings.
    const res = await curl(['--http2', '-H', 'Host: chat', `http://127.0.0.1:${outboundPort}/`]);
    expect(res.status).toBe(200);
    expect(res.body).toBe('plain');
  });

  it('upgrades with `Connection: keep-alive, Upgrade` (a token list)', async () => {
    const head = await new Promise<string>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port: outboundPort }, () => {
        socket.write(
          'GET /echo HTTP/1.1\r\nHost: chat\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n' +
            'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
        );
      });
      let got = '';
      socket.on('data', (c: Buffer) => {
        got += c.toString('latin1');
        const end = got.indexOf('\r\n\r\n');
        if (end !== -1) {
          socket.destroy();
          resolve(got.slice(0, end));
        }
      });
      socket.on('error', reject);
    });
    expect(head.split('\r\n')[0]).toBe('HTTP/1.1 101 Switching Protocols');
    // RFC 6455 §1.3: the accept value of the sample nonce.
    expect(head.toLowerCase()).toContain('sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=');
  });
});

describe('WebSocket through the edge gateway', () => {
  it('carries text and binary messages and the close handshake; the gateway and chat count 101', async () => {
    const before = sample(await chat.metrics(), 'weft_requests_total', {
      response_code: '101',
      reporter: 'destination',
    });
    const ws = new WebSocket(`ws://127.0.0.1:${gatewayPort}/chat/echo`);
    await opened(ws);
    await echoAndClose(ws, 'hello through the gateway');

    await pollUntil('the gateway and chat to record the upgrade with status 101', async () => {
      const g = await (await request(`${gatewayAdmin}/metrics`)).body.text();
      const c = await chat.metrics();
      const viaGateway = sample(g, 'weft_requests_total', {
        response_code: '101',
        reporter: 'gateway',
        destination_service: 'chat',
      });
      const atChat = sample(c, 'weft_requests_total', {
        response_code: '101',
        reporter: 'destination',
        connection_security_policy: 'mutual_tls',
      });
      return viaGateway >= 1 && atChat >= before + 1 ? true : undefined;
    });
  });
});
