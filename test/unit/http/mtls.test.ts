/**
 * mTLS in the proxy core, in process with real sockets on loopback: downstream modes (STRICT,
 * PERMISSIVE, before any identity), the source principal handed to filters, max connection age,
 * rotation retiring old connections, and upstream mTLS with connection reuse and exact SPIFFE ID
 * checks. Certificates come from test/support/pki.ts; verification is Node's TLS (not mocked).
 */
import diagnostics from 'node:diagnostics_channel';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { Client } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ProxyConfig } from '../../../sidecar/proxy/config/model.ts';
import type { DownstreamTls } from '../../../sidecar/proxy/config/types.ts';
import { CONTINUE, type HttpFilter } from '../../../sidecar/proxy/filters/filter.ts';
import { identityFromPem, type TlsHandshakeEvent } from '../../../sidecar/proxy/identity.ts';
import { ProxyCore } from '../../../sidecar/proxy/proxy.ts';
import { createCa, type Leaf, spiffeIdOf, type TestCa } from '../../support/pki.ts';

const TD = 'test.local';
let mesh: TestCa;
let other: TestCa;
let apiLeaf: Leaf;
let webLeaf: Leaf;
let clientLeaf: Leaf;
let app: Server;
let appPort = 0;
const proxies: ProxyCore[] = [];
const handshakes: TlsHandshakeEvent[] = [];
const onHandshake = (m: unknown): void => {
  handshakes.push(m as TlsHandshakeEvent);
};

beforeAll(async () => {
  mesh = createCa('mesh root');
  other = createCa('other root');
  apiLeaf = mesh.leaf(spiffeIdOf(TD, 'api'));
  webLeaf = mesh.leaf(spiffeIdOf(TD, 'web'));
  clientLeaf = mesh.leaf(spiffeIdOf(TD, 'curl'));
  app = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end(`app ${req.url}`));
  });
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  appPort = (app.address() as AddressInfo).port;
  diagnostics.subscribe('weft:tls:handshake', onHandshake);
});

afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close(0)));
  handshakes.length = 0;
});

afterAll(async () => {
  diagnostics.unsubscribe('weft:tls:handshake', onHandshake);
  app.closeAllConnections();
  await new Promise<void>((resolve) => app.close(() => resolve()));
});

/** An inbound proxy config: one listener (port 0) → the app. */
function inboundConfig(tls: DownstreamTls, withBundle = true, drainTimeoutMs = 5000): ProxyConfig {
  return {
    listeners: [
      {
        name: 'inbound',
        address: '127.0.0.1',
        port: 0,
        direction: 'INBOUND',
        routeConfigName: 'r',
        tls,
        drainTimeoutMs,
      },
    ],
    routes: [
      {
        name: 'r',
        virtualHosts: [
          { name: 'all', domains: ['*'], routes: [{ name: 'app', route: { clusters: [{ name: 'app' }] } }] },
        ],
      },
    ],
    clusters: [{ name: 'app' }],
    endpoints: [{ clusterName: 'app', endpoints: [{ address: '127.0.0.1', port: appPort }] }],
    ...(withBundle && { trustBundle: { trustDomain: TD, rootsPem: [mesh.certPem] } }),
  };
}

/** A proxy with a filter that records each request's source principal and security policy. */
async function startProxy(
  config: ProxyConfig,
  leaf: Leaf | undefined,
): Promise<{ proxy: ProxyCore; port: number; seen: string[] }> {
  const seen: string[] = [];
  const recorder: HttpFilter = {
    name: 'test.recorder',
    onRequest: (ctx) => {
      seen.push(`${ctx.securityPolicy} ${ctx.sourcePrincipal}`);
      return CONTINUE;
    },
  };
  const proxy = new ProxyCore({ filters: [recorder] });
  proxies.push(proxy);
  if (leaf !== undefined) proxy.setIdentity(identityFromPem(leaf.certPem, leaf.keyPem));
  await proxy.apply(config, '1');
  return { proxy, port: proxy.listeners()[0]?.port ?? 0, seen };
}

/** One HTTP/1.1 request over a fresh TLS connection with `leaf` (or none); resolves with the raw reply. */
function tlsRequest(port: number, leaf: Leaf | undefined, ca = mesh.certPem): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      ca,
      ...(leaf !== undefined && { cert: leaf.certPem, key: leaf.keyPem }),
      ALPNProtocols: ['http/1.1'],
    });
    socket.on('secureConnect', () =>
      socket.write('GET /x HTTP/1.1\r\nhost: api\r\nconnection: close\r\n\r\n'),
    );
    socket.on('data', (d: Buffer) => {
      out += d.toString();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(out));
  });
}

/** One plain-text request; resolves with the raw reply ('' when the connection was refused or cut). */
function plainRequest(port: number): Promise<string> {
  return fetch(`http://127.0.0.1:${port}/x`, { headers: { host: 'api' } }).then(
    async (r) => `HTTP ${r.status} ${await r.text()}`,
    () => '',
  );
}

function mtlsClient(port: number, leaf: Leaf): Client {
  return new Client(`https://127.0.0.1:${port}`, {
    connect: { ca: mesh.certPem, cert: leaf.certPem, key: leaf.keyPem },
    keepAliveTimeout: 30_000,
  });
}

async function get(
  client: Client,
  path = '/x',
): Promise<{ status: number; connection: string; body: string }> {
  const res = await client.request({ path, method: 'GET', headers: { host: 'api' } });
  const body = await res.body.text();
  return { status: res.statusCode, connection: String(res.headers.connection ?? ''), body };
}

describe('downstream mTLS', () => {
  it('STRICT accepts a mesh certificate and hands filters the peer SPIFFE ID', async () => {
    const { port, seen } = await startProxy(inboundConfig({ mode: 'STRICT' }), apiLeaf);
    expect(await tlsRequest(port, clientLeaf)).toMatch(/^HTTP\/1\.1 200 OK[\s\S]*app \/x$/);
    expect(seen).toEqual([`mutual_tls ${clientLeaf.spiffeId}`]);
  });

  it('STRICT refuses plain text, TLS without a client certificate, and a certificate of another CA', async () => {
    const { port, seen } = await startProxy(inboundConfig({ mode: 'STRICT' }), apiLeaf);
    expect(await plainRequest(port)).toBe('');
    expect(await tlsRequest(port, undefined)).toBe('');
    expect(await tlsRequest(port, other.leaf(spiffeIdOf(TD, 'curl')))).toBe('');
    expect(seen).toEqual([]);
  });

  it('STRICT refuses a chained certificate that is not an SVID of our trust domain', async () => {
    const { port } = await startProxy(inboundConfig({ mode: 'STRICT' }), apiLeaf);
    expect(await tlsRequest(port, mesh.leaf(spiffeIdOf('elsewhere.org', 'curl')))).toBe('');
    expect(await tlsRequest(port, mesh.leaf('', { uris: [] }))).toBe('');
    expect(await tlsRequest(port, mesh.leaf('', { uris: [spiffeIdOf(TD, 'a'), spiffeIdOf(TD, 'b')] }))).toBe(
      '',
    );
    expect(await tlsRequest(port, mesh.leaf('https://test.local/ns/default/sa/curl'))).toBe('');
    const reasons = handshakes.filter((h) => !h.ok).map((h) => h.reason);
    expect(reasons).toEqual([
      expect.stringContaining('not in trust domain test.local'),
      expect.stringContaining('0 URI SANs'),
      expect.stringContaining('2 URI SANs'),
      expect.stringContaining('is not a SPIFFE ID'),
    ]);
  });

  it('PERMISSIVE serves plain text and mTLS on one port, telling them apart', async () => {
    const { port, seen } = await startProxy(inboundConfig({ mode: 'PERMISSIVE' }), apiLeaf);
    expect(await plainRequest(port)).toBe('HTTP 200 app /x');
    expect(await tlsRequest(port, clientLeaf)).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(await tlsRequest(port, undefined)).toBe(''); // TLS is mutual even when permissive
    expect(seen).toEqual(['none ', `mutual_tls ${clientLeaf.spiffeId}`]);
  });

  it('applies a TLS config before any identity: not identityReady, TLS refused, plain text still served', async () => {
    const { proxy, port } = await startProxy(inboundConfig({ mode: 'PERMISSIVE' }), undefined);
    expect(proxy.identityReady).toBe(false);
    expect(await tlsRequest(port, clientLeaf)).toBe('');
    expect(await plainRequest(port)).toBe('HTTP 200 app /x');
    proxy.setIdentity(identityFromPem(apiLeaf.certPem, apiLeaf.keyPem));
    expect(proxy.identityReady).toBe(true);
    expect(await tlsRequest(port, clientLeaf)).toMatch(/^HTTP\/1\.1 200 OK/);
  });

  it('answers the next request on a connection past its max age with Connection: close', async () => {
    const { port } = await startProxy(inboundConfig({ mode: 'STRICT', maxConnectionAgeMs: 300 }), apiLeaf);
    const client = mtlsClient(port, clientLeaf);
    try {
      expect(await get(client)).toMatchObject({ status: 200, connection: 'keep-alive' });
      await new Promise((r) => setTimeout(r, 450));
      expect(await get(client)).toMatchObject({ status: 200, connection: 'close' });
      expect(await get(client)).toMatchObject({ status: 200, connection: 'keep-alive' });
      expect(handshakes.filter((h) => h.side === 'downstream' && h.ok)).toHaveLength(2);
    } finally {
      await client.close();
    }
  });

  it('ends a connection past its max age that stays idle for the drain period', async () => {
    const config = inboundConfig({ mode: 'STRICT', maxConnectionAgeMs: 200 }, true, 200);
    const { port } = await startProxy(config, apiLeaf);
    const client = mtlsClient(port, clientLeaf);
    try {
      expect(await get(client)).toMatchObject({ status: 200, connection: 'keep-alive' });
      await new Promise((r) => setTimeout(r, 650));
      // Ended at ~400 ms (age 200 + idle 200): the next request needs a new connection.
      expect(await get(client)).toMatchObject({ status: 200, connection: 'keep-alive' });
      expect(handshakes.filter((h) => h.side === 'downstream' && h.ok)).toHaveLength(2);
    } finally {
      await client.close();
    }
  });

  it('marks a response Connection: close when the connection expires while the request is in flight', async () => {
    const slow = createServer((_req, res) => setTimeout(() => res.end('slow'), 400));
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    const config = inboundConfig({ mode: 'STRICT', maxConnectionAgeMs: 200 });
    const slowConfig: ProxyConfig = {
      ...config,
      endpoints: [
        {
          clusterName: 'app',
          endpoints: [{ address: '127.0.0.1', port: (slow.address() as AddressInfo).port }],
        },
      ],
    };
    const { port } = await startProxy(slowConfig, apiLeaf);
    const client = mtlsClient(port, clientLeaf);
    try {
      expect(await get(client)).toMatchObject({ status: 200, connection: 'close', body: 'slow' });
    } finally {
      await client.close();
      slow.closeAllConnections();
      slow.close();
    }
  });

  it('after setIdentity, new handshakes present the new certificate and old connections are retired', async () => {
    const { proxy, port } = await startProxy(inboundConfig({ mode: 'STRICT' }), apiLeaf);
    const client = mtlsClient(port, clientLeaf);
    const serials: string[] = [];
    const peerSerial = (): Promise<string> =>
      new Promise((resolve) => {
        const s: TLSSocket = tlsConnect({
          host: '127.0.0.1',
          port,
          ca: mesh.certPem,
          cert: clientLeaf.certPem,
          key: clientLeaf.keyPem,
        });
        s.on('secureConnect', () => {
          resolve(s.getPeerX509Certificate()?.serialNumber ?? '');
          s.destroy();
        });
        s.on('error', () => resolve(''));
      });
    try {
      expect(await get(client)).toMatchObject({ status: 200 });
      serials.push(await peerSerial());
      const rotated = mesh.leaf(spiffeIdOf(TD, 'api'));
      proxy.setIdentity(identityFromPem(rotated.certPem, rotated.keyPem));
      serials.push(await peerSerial());
      expect(serials[0]).not.toBe(serials[1]);
      // The keep-alive connection made with the old certificate closes after its next response;
      // the request after that opens a new one.
      const before = handshakes.filter((h) => h.side === 'downstream' && h.ok).length;
      expect(await get(client)).toMatchObject({ status: 200, connection: 'close' });
      expect(await get(client)).toMatchObject({ status: 200, connection: 'keep-alive' });
      expect(handshakes.filter((h) => h.side === 'downstream' && h.ok).length).toBe(before + 1);
      expect(proxy.identity?.generation).toBe(2);
    } finally {
      await client.close();
    }
  });

  it('rejects an identity whose key does not match, keeping the old one', async () => {
    const { proxy } = await startProxy(inboundConfig({ mode: 'STRICT' }), apiLeaf);
    expect(() =>
      proxy.setIdentity({ ...identityFromPem(apiLeaf.certPem, apiLeaf.keyPem), keyPem: webLeaf.keyPem }),
    ).toThrow(/does not match/);
    expect(proxy.identity?.spiffeId).toBe(apiLeaf.spiffeId);
  });
});

/** An outbound proxy: plain listener → cluster `api` over mTLS to `port`, expecting `identity`. */
function outboundConfig(port: number, identity: string): ProxyConfig {
  return {
    listeners: [
      { name: 'outbound', address: '127.0.0.1', port: 0, direction: 'OUTBOUND', routeConfigName: 'r' },
    ],
    routes: [
      {
        name: 'r',
        virtualHosts: [
          { name: 'api', domains: ['*'], routes: [{ name: 'api', route: { clusters: [{ name: 'api' }] } }] },
        ],
      },
    ],
    clusters: [{ name: 'api', tls: { enabled: true } }],
    endpoints: [{ clusterName: 'api', endpoints: [{ address: '127.0.0.1', port, identity }] }],
    trustBundle: { trustDomain: TD, rootsPem: [mesh.certPem] },
  };
}

describe('upstream mTLS', () => {
  it('reuses pooled connections: 100 sequential requests, one handshake each side', async () => {
    const inbound = await startProxy(inboundConfig({ mode: 'STRICT' }), apiLeaf);
    const outbound = await startProxy(outboundConfig(inbound.port, apiLeaf.spiffeId), webLeaf);
    const client = new Client(`http://127.0.0.1:${outbound.port}`, { keepAliveTimeout: 30_000 });
    try {
      for (let i = 0; i < 100; i++) expect((await get(client, `/r${i}`)).status).toBe(200);
    } finally {
      await client.close();
    }
    expect(handshakes.filter((h) => h.side === 'upstream' && h.ok)).toHaveLength(1);
    expect(handshakes.filter((h) => h.side === 'downstream' && h.ok)).toHaveLength(1);
    expect(new Set(inbound.seen)).toEqual(new Set([`mutual_tls ${webLeaf.spiffeId}`]));
  });

  it('refuses a peer with a valid mesh certificate of another service: 503 naming both IDs', async () => {
    const imposter = await startProxy(
      inboundConfig({ mode: 'STRICT' }),
      mesh.leaf(spiffeIdOf(TD, 'billing')),
    );
    const outbound = await startProxy(outboundConfig(imposter.port, apiLeaf.spiffeId), webLeaf);
    const res = await fetch(`http://127.0.0.1:${outbound.port}/x`, { headers: { host: 'api' } });
    expect(res.status).toBe(503);
    expect(res.headers.get('x-weft-error')).toBe('UPSTREAM_CONNECT_FAILURE');
    expect(await res.text()).toContain(
      `the peer presented ${spiffeIdOf(TD, 'billing')}, expected ${apiLeaf.spiffeId}`,
    );
    expect(imposter.seen).toEqual([]);
  });

  it('refuses a peer whose certificate chains to another CA', async () => {
    const stranger = await startProxy(
      {
        ...inboundConfig({ mode: 'STRICT' }, false),
        trustBundle: { trustDomain: TD, rootsPem: [other.certPem, mesh.certPem] },
      },
      other.leaf(spiffeIdOf(TD, 'api')),
    );
    const outbound = await startProxy(outboundConfig(stranger.port, apiLeaf.spiffeId), webLeaf);
    const res = await fetch(`http://127.0.0.1:${outbound.port}/x`, { headers: { host: 'api' } });
    expect(res.status).toBe(503);
    expect(await res.text()).toMatch(
      /mTLS handshake with 127\.0\.0\.1:\d+ failed: .*(certificate|self.signed)/i,
    );
  });

  it('does not reuse connections verified for another identity when the expected ID changes', async () => {
    const inbound = await startProxy(inboundConfig({ mode: 'STRICT' }), apiLeaf);
    const outbound = await startProxy(outboundConfig(inbound.port, apiLeaf.spiffeId), webLeaf);
    const ask = () => fetch(`http://127.0.0.1:${outbound.port}/x`, { headers: { host: 'api' } });
    expect((await ask()).status).toBe(200);
    await outbound.proxy.apply(outboundConfig(inbound.port, spiffeIdOf(TD, 'billing')), '2');
    const res = await ask();
    expect(res.status).toBe(503);
    expect(await res.text()).toContain(
      `the peer presented ${apiLeaf.spiffeId}, expected ${spiffeIdOf(TD, 'billing')}`,
    );
  });

  it('fails with 503 before the proxy has an identity', async () => {
    const inbound = await startProxy(inboundConfig({ mode: 'STRICT' }), apiLeaf);
    const outbound = await startProxy(outboundConfig(inbound.port, apiLeaf.spiffeId), undefined);
    const res = await fetch(`http://127.0.0.1:${outbound.port}/x`, { headers: { host: 'api' } });
    expect(res.status).toBe(503);
    expect(await res.text()).toContain('no workload certificate yet');
  });

  it('after setIdentity, new requests use new connections with the new certificate', async () => {
    const inbound = await startProxy(inboundConfig({ mode: 'STRICT' }), apiLeaf);
    const outbound = await startProxy(outboundConfig(inbound.port, apiLeaf.spiffeId), webLeaf);
    const client = new Client(`http://127.0.0.1:${outbound.port}`, { keepAliveTimeout: 30_000 });
    try {
      for (let i = 0; i < 5; i++) expect((await get(client)).status).toBe(200);
      const rotated = mesh.leaf(spiffeIdOf(TD, 'web'));
      outbound.proxy.setIdentity(identityFromPem(rotated.certPem, rotated.keyPem));
      for (let i = 0; i < 5; i++) expect((await get(client)).status).toBe(200);
    } finally {
      await client.close();
    }
    expect(handshakes.filter((h) => h.side === 'upstream' && h.ok)).toHaveLength(2);
  });
});
