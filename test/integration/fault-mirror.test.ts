/**
 * Fault injection and request mirroring end to end: a real `weft sidecar --config`, real upstreams
 * on loopback (a primary that reports the body it got, a mirror that records every copy, a mirror
 * that never answers and one that refuses connections) and curl or node:http as the client.
 *
 * Fault: an abort answers the configured status with `x-weft-error: FAULT_INJECTED` and never
 * reaches the upstream; a delay holds the request for about its length and then forwards it; a
 * client that leaves during the delay is never forwarded; a 50 % abort aborts about half.
 * Mirror: the copy has the method, path, headers (host `-shadow`) and body; bodies over 64 KiB are
 * not mirrored; a hanging or refusing mirror neither slows nor fails the caller; everything is
 * counted in `weft_mirrored_requests_total{cluster, result}`.
 */
import { EventEmitter } from 'node:events';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer as createTcpServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Route } from '../../sidecar/proxy/config/types.ts';
import { curl } from '../support/curl.ts';
import { curlMany, tally } from '../support/routing.ts';
import { outboundBootstrap, type RunningSidecar, startSidecar } from '../support/sidecar.ts';
import { startUpstream, type Upstream } from '../support/upstream.ts';

interface Copy {
  readonly method: string;
  readonly url: string;
  readonly host: string;
  readonly id: string;
  readonly body: Buffer;
}

/** Reads a request's whole body. */
function bodyOf(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
  });
}

/** A port on 127.0.0.1 with nothing listening. */
async function closedPort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function route(name: string, prefix: string, extra: Partial<Route> = {}): Route {
  return {
    name,
    matches: [{ path: { type: 'PATH_PREFIX', value: prefix } }],
    route: { clusters: [{ name: 'primary' }] },
    ...extra,
  };
}

/** The value of one series of a counter in Prometheus text, 0 when absent. */
function series(metrics: string, name: string, labels: string): number {
  for (const line of metrics.split('\n')) {
    if (line.startsWith(`${name}{`) && line.includes(labels))
      return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

describe('fault injection and request mirroring', () => {
  const primarySeen: string[] = [];
  const copies: Copy[] = [];
  const copyEvents = new EventEmitter();
  let primary: Upstream;
  let shadow: Upstream;
  let hang: Upstream;
  let sidecar: RunningSidecar;
  let base: string;
  let admin: string;

  beforeAll(async () => {
    primary = await startUpstream((req, res) => {
      primarySeen.push(String(req.headers['x-test-id'] ?? ''));
      void bodyOf(req).then((body) => {
        res.writeHead(200, { 'content-type': 'text/plain', 'x-upstream': 'primary' });
        res.end(`${req.method} ${req.url} ${body.length}`);
      });
    });
    shadow = await startUpstream((req, res) => {
      void bodyOf(req).then((body) => {
        const copy = {
          method: req.method ?? '',
          url: req.url ?? '',
          host: req.headers.host ?? '',
          id: String(req.headers['x-test-id'] ?? ''),
          body,
        };
        copies.push(copy);
        copyEvents.emit('copy', copy);
        res.writeHead(500); // the mirror's answer never reaches the caller
        res.end('shadow says no');
      });
    });
    hang = await startUpstream((req) => {
      req.resume(); // reads the copy, never answers
    });
    sidecar = await startSidecar(
      outboundBootstrap({
        virtualHosts: [
          {
            name: 'svc',
            domains: ['svc'],
            routes: [
              route('abort', '/abort', { fault: { abortStatus: 418, abortPercent: 100 } }),
              route('half-abort', '/half-abort', { fault: { abortStatus: 503, abortPercent: 50 } }),
              route('delay', '/delay', { fault: { delayMs: 400, delayPercent: 100 } }),
              route('mirror', '/mirror', { mirrors: [{ cluster: 'shadow' }] }),
              route('mirror-retry', '/retried', {
                mirrors: [{ cluster: 'shadow' }],
                retry: { numRetries: 1, retryOnStatus: [503], retryMethods: ['POST'] },
              }),
              route('mirror-broken', '/broken', {
                mirrors: [{ cluster: 'hang' }, { cluster: 'refused', percent: 100 }],
              }),
              route('plain', '/'),
            ],
          },
        ],
        clusters: [
          { name: 'primary' },
          { name: 'shadow' },
          { name: 'hang' },
          { name: 'refused', connectionPool: { connectTimeoutMs: 1000 } },
        ],
        endpoints: [
          { clusterName: 'primary', endpoints: [{ address: '127.0.0.1', port: primary.port }] },
          { clusterName: 'shadow', endpoints: [{ address: '127.0.0.1', port: shadow.port }] },
          { clusterName: 'hang', endpoints: [{ address: '127.0.0.1', port: hang.port }] },
          { clusterName: 'refused', endpoints: [{ address: '127.0.0.1', port: await closedPort() }] },
        ],
      }),
    );
    base = sidecar.url('outbound');
    admin = `http://127.0.0.1:${sidecar.adminPort}`;
  });

  afterAll(async () => {
    await hang?.close(); // ends the hanging copies first
    await sidecar?.stop();
    await Promise.all([primary, shadow].map((u) => u?.close()));
  });

  const metrics = async (): Promise<string> => (await curl([`${admin}/metrics`])).body;

  describe('fault injection', () => {
    it('aborts with the configured status and x-weft-error FAULT_INJECTED; the upstream never sees it', async () => {
      const res = await curl(['-H', 'Host: svc', '-H', 'x-test-id: abort-1', `${base}/abort`]);
      expect(res.status).toBe(418);
      expect(res.header('x-weft-error')).toBe('FAULT_INJECTED');
      expect(res.body).toBe('the route aborted the request (fault injection)\n');
      expect(primarySeen).not.toContain('abort-1');
      await expect
        .poll(async () => series(await metrics(), 'weft_requests_total', 'response_flags="FAULT_INJECTED"'))
        .toBeGreaterThanOrEqual(1);
    });

    it('aborts about half the requests at 50 %', async () => {
      const lines = await curlMany(`${base}/half-abort`, 200, '%{http_code}', ['-H', 'Host: svc']);
      const counts = tally(lines);
      expect((counts.get('503') ?? 0) + (counts.get('200') ?? 0)).toBe(200);
      expect(counts.get('503')).toBeGreaterThan(60);
      expect(counts.get('503')).toBeLessThan(140);
    });

    it('delays the request by about the configured time, then forwards it', async () => {
      const start = performance.now();
      const res = await curl(['-H', 'Host: svc', '-H', 'x-test-id: delay-1', `${base}/delay`]);
      const elapsedMs = performance.now() - start;
      expect(res.status).toBe(200);
      expect(res.body).toBe('GET /delay 0');
      expect(primarySeen).toContain('delay-1');
      expect(elapsedMs).toBeGreaterThanOrEqual(390);
      expect(elapsedMs).toBeLessThan(2000);
    });

    it('never forwards a request whose client left during the delay', async () => {
      const left = new Promise<void>((resolve) => {
        const req = httpRequest(`${base}/delay`, { headers: { host: 'svc', 'x-test-id': 'leaver' } });
        req.on('error', () => resolve());
        req.on('socket', () => setTimeout(() => req.destroy(), 100));
        req.on('close', () => resolve());
        req.end();
      });
      await left;
      // A later request on the same delay is held past the leaver's deadline on the same timer.
      const after = await curl(['-H', 'Host: svc', '-H', 'x-test-id: after-leaver', `${base}/delay`]);
      expect(after.status).toBe(200);
      expect((await curl(['-H', 'Host: svc', `${base}/plain`])).status).toBe(200);
      expect(primarySeen).toContain('after-leaver');
      expect(primarySeen).not.toContain('leaver');
      await expect
        .poll(async () =>
          series(await metrics(), 'weft_requests_total', 'response_flags="DOWNSTREAM_DISCONNECT"'),
        )
        .toBeGreaterThanOrEqual(1);
    });
  });

  describe('request mirroring', () => {
    /** Resolves with the copy of request `id` once the shadow upstream has it. */
    function copyOf(id: string): Promise<Copy> {
      const seen = copies.find((c) => c.id === id);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no mirror copy of ${id}`)), 5000);
        const onCopy = (c: Copy): void => {
          if (c.id !== id) return;
          clearTimeout(timer);
          copyEvents.off('copy', onCopy);
          resolve(c);
        };
        copyEvents.on('copy', onCopy);
      });
    }

    it('sends a copy with method, path, query and a -shadow host; the caller gets the primary answer', async () => {
      const copy = copyOf('m-get');
      const res = await curl([
        '-H',
        'Host: svc',
        '-H',
        'x-test-id: m-get',
        `${base}/mirror/items?q=a%20b&x=1`,
      ]);
      expect(res.status).toBe(200);
      expect(res.body).toBe('GET /mirror/items?q=a%20b&x=1 0');
      expect(await copy).toMatchObject({
        method: 'GET',
        url: '/mirror/items?q=a%20b&x=1',
        host: 'svc-shadow',
      });
    });

    it('copies a request body (fixed length and chunked) byte for byte', async () => {
      const body = Buffer.alloc(10 * 1024, 'abcdefgh');
      const fixed = copyOf('m-post');
      const res = await curl([
        '-H',
        'Host: svc',
        '-H',
        'x-test-id: m-post',
        '-H',
        'content-type: application/octet-stream',
        '--data-binary',
        body.toString(),
        `${base}/mirror/upload`,
      ]);
      expect(res.body).toBe(`POST /mirror/upload ${body.length}`);
      expect((await fixed).body.equals(body)).toBe(true);

      const chunked = copyOf('m-chunked');
      const res2 = await curl([
        '-H',
        'Host: svc',
        '-H',
        'x-test-id: m-chunked',
        '-H',
        'transfer-encoding: chunked',
        '--data-binary',
        'streamed body',
        `${base}/mirror/stream`,
      ]);
      expect(res2.body).toBe('POST /mirror/stream 13');
      expect((await chunked).body.toString()).toBe('streamed body');
    });

    it('copies the body a retry policy buffers for replay', async () => {
      const body = Buffer.alloc(20 * 1024, 'retry me ');
      const copy = copyOf('m-retry');
      const res = await curl([
        '-H',
        'Host: svc',
        '-H',
        'x-test-id: m-retry',
        '--data-binary',
        body.toString(),
        `${base}/retried`,
      ]);
      expect(res.body).toBe(`POST /retried ${body.length}`);
      expect((await copy).body.equals(body)).toBe(true);
    });

    it('does not mirror a body over 64 KiB, forwards it whole, and counts it', async () => {
      const body = 'z'.repeat(100 * 1024);
      const res = await curl([
        '-H',
        'Host: svc',
        '-H',
        'x-test-id: m-big',
        '--data-binary',
        body,
        `${base}/mirror/big`,
      ]);
      expect(res.body).toBe(`POST /mirror/big ${body.length}`);
      await expect
        .poll(async () =>
          series(await metrics(), 'weft_mirrored_requests_total', 'cluster="shadow",result="body_too_large"'),
        )
        .toBe(1);
      // A later copy arrives, the big one never did.
      await Promise.all([
        copyOf('m-after'),
        curl(['-H', 'Host: svc', '-H', 'x-test-id: m-after', `${base}/mirror`]),
      ]);
      expect(copies.map((c) => c.id)).not.toContain('m-big');
    });

    it('a hanging and a refusing mirror neither slow nor fail the caller', async () => {
      const start = performance.now();
      const lines = await curlMany(`${base}/broken`, 30, '%{http_code} %{time_total}', ['-H', 'Host: svc']);
      const elapsedMs = performance.now() - start;
      expect(lines.map((l) => l.split(' ')[0])).toEqual(Array(30).fill('200'));
      for (const l of lines) expect(Number(l.split(' ')[1])).toBeLessThan(0.5);
      expect(elapsedMs).toBeLessThan(3000);
      await expect.poll(() => hang.seen.length, { timeout: 5000 }).toBe(30);
      await expect
        .poll(
          async () =>
            series(await metrics(), 'weft_mirrored_requests_total', 'cluster="refused",result="error"'),
          {
            timeout: 5000,
          },
        )
        .toBe(30);
    });

    it('counts the copies that got an answer as ok, whatever their status', async () => {
      const before = series(await metrics(), 'weft_mirrored_requests_total', 'cluster="shadow",result="ok"');
      await Promise.all([
        copyOf('m-count'),
        curl(['-H', 'Host: svc', '-H', 'x-test-id: m-count', `${base}/mirror`]),
      ]);
      await expect
        .poll(async () =>
          series(await metrics(), 'weft_mirrored_requests_total', 'cluster="shadow",result="ok"'),
        )
        .toBe(before + 1);
    });
  });
});
