/**
 * Timeouts and upstream failures, end to end: a real `weft sidecar`, real upstreams on loopback
 * that stall, refuse, reset or answer garbage, and curl as the client. Each failure must become
 * the local reply of its kind (sidecar/proxy/errors.ts: status plus `x-weft-error`), arrive well
 * before the upstream would have answered, and abort the upstream request (the upstream sees its
 * response closed before it finished).
 */
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Route } from '../../sidecar/proxy/config/types.ts';
import { curl } from '../support/curl.ts';
import { echoOf, namedUpstream, within } from '../support/routing.ts';
import { outboundBootstrap, type RunningSidecar, startSidecar } from '../support/sidecar.ts';
import { startUpstream, type Upstream } from '../support/upstream.ts';

/** The upstream's delay before it answers, unless `?delay=<ms>` says otherwise. */
const UPSTREAM_DELAY_MS = 3000;

function prefixRoute(name: string, prefix: string, cluster: string, extra: Partial<Route> = {}): Route {
  return {
    name,
    matches: [{ path: { type: 'PATH_PREFIX', value: prefix } }],
    route: { clusters: [{ name: cluster }] },
    ...extra,
  };
}

/** A port on 127.0.0.1 with nothing listening: bound once, then closed. */
async function closedPort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('timeouts and upstream failures', () => {
  /** Emits `closed` (test id, whether the response had finished) when a slow request's response closes. */
  const slowEvents = new EventEmitter();
  let slow: Upstream;
  let reset: Upstream;
  let truncate: Upstream;
  let garbage: TcpServer;
  let unhealthyBackend: Upstream;
  let sidecar: RunningSidecar;
  let base: string;
  let nextId = 0;

  beforeAll(async () => {
    slow = await startUpstream((req, res) => {
      const id = String(req.headers['x-test-id'] ?? '');
      const url = new URL(req.url ?? '/', 'http://x');
      const delay = Number(url.searchParams.get('delay') ?? UPSTREAM_DELAY_MS);
      req.resume();
      if (url.pathname.startsWith('/stall-body')) {
        // The head and a first chunk now, the rest never: for timeouts once the response started.
        res.writeHead(200, { 'content-length': '100', 'content-type': 'text/plain' });
        res.write('first bytes');
      }
      const timer = setTimeout(() => {
        if (!res.headersSent) res.writeHead(200, { 'x-upstream': 'slow', 'content-type': 'text/plain' });
        res.end('late answer');
      }, delay);
      res.on('close', () => {
        clearTimeout(timer);
        slowEvents.emit('closed', id, res.writableFinished);
      });
    });
    reset = await startUpstream((req) => {
      req.socket.destroy();
    });
    truncate = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-length': '1000', 'content-type': 'text/plain' });
      res.write('only the first bytes', () => res.socket?.destroy());
    });
    garbage = createTcpServer((socket) => {
      socket.once('data', () => socket.end('HTTP/1.1 abc nonsense\r\n\r\n'));
    });
    await new Promise<void>((resolve) => garbage.listen(0, '127.0.0.1', resolve));
    unhealthyBackend = await namedUpstream('unhealthy');

    sidecar = await startSidecar(
      outboundBootstrap({
        virtualHosts: [
          {
            name: 'slow',
            domains: ['slow'],
            routes: [
              prefixRoute('request-timeout', '/request-timeout', 'slow', { timeouts: { requestMs: 300 } }),
              prefixRoute('backend-timeout', '/backend-timeout', 'slow', {
                timeouts: { requestMs: 2500, backendRequestMs: 300 },
              }),
              prefixRoute('backend-timeout-only', '/backend-only', 'slow', {
                timeouts: { backendRequestMs: 300 },
              }),
              prefixRoute('stall-body', '/stall-body', 'slow', { timeouts: { requestMs: 300 } }),
              prefixRoute('in-time', '/in-time', 'slow', {
                timeouts: { requestMs: 2000, backendRequestMs: 1500 },
              }),
              prefixRoute('no-timeout', '/', 'slow'),
            ],
          },
          { name: 'refused', domains: ['refused'], routes: [prefixRoute('refused', '/', 'refused')] },
          { name: 'reset', domains: ['reset'], routes: [prefixRoute('reset', '/', 'reset')] },
          { name: 'truncate', domains: ['truncate'], routes: [prefixRoute('truncate', '/', 'truncate')] },
          { name: 'garbage', domains: ['garbage'], routes: [prefixRoute('garbage', '/', 'garbage')] },
          { name: 'empty', domains: ['empty'], routes: [prefixRoute('empty', '/', 'empty')] },
          { name: 'unhealthy', domains: ['unhealthy'], routes: [prefixRoute('unhealthy', '/', 'unhealthy')] },
        ],
        clusters: [
          { name: 'slow' },
          { name: 'refused', connectionPool: { connectTimeoutMs: 2000 } },
          { name: 'reset' },
          { name: 'truncate' },
          { name: 'garbage' },
          { name: 'empty' },
          { name: 'unhealthy' },
        ],
        endpoints: [
          { clusterName: 'slow', endpoints: [{ address: '127.0.0.1', port: slow.port }] },
          { clusterName: 'refused', endpoints: [{ address: '127.0.0.1', port: await closedPort() }] },
          { clusterName: 'reset', endpoints: [{ address: '127.0.0.1', port: reset.port }] },
          { clusterName: 'truncate', endpoints: [{ address: '127.0.0.1', port: truncate.port }] },
          {
            clusterName: 'garbage',
            endpoints: [{ address: '127.0.0.1', port: (garbage.address() as AddressInfo).port }],
          },
          {
            clusterName: 'unhealthy',
            endpoints: [{ address: '127.0.0.1', port: unhealthyBackend.port, health: 'UNHEALTHY' }],
          },
        ],
      }),
    );
    base = sidecar.url('outbound');
  });

  afterAll(async () => {
    await sidecar?.stop();
    await Promise.all([slow, reset, truncate, unhealthyBackend].map((u) => u?.close()));
    await new Promise<void>((resolve) => (garbage ? garbage.close(() => resolve()) : resolve()));
  });

  /** Resolves with `finished` once the slow upstream's response for `id` closes; rejects after `timeoutMs`. */
  function upstreamClosed(id: string, timeoutMs = 2000): Promise<boolean> {
    return within(
      new Promise<boolean>((resolve) => {
        const onClosed = (closedId: string, finished: boolean) => {
          if (closedId !== id) return;
          slowEvents.off('closed', onClosed);
          resolve(finished);
        };
        slowEvents.on('closed', onClosed);
      }),
      timeoutMs,
      `the upstream to see request ${id} closed`,
    );
  }

  /** curl against the slow host with a fresh test id; returns the response, elapsed ms and the close wait. */
  async function slowRequest(path: string, args: readonly string[] = [], curlTimeoutMs = 30_000) {
    const id = `t${++nextId}`;
    const closed = upstreamClosed(id, UPSTREAM_DELAY_MS + 2000);
    const start = performance.now();
    const res = await curl(
      ['-H', 'Host: slow', '-H', `x-test-id: ${id}`, ...args, `${base}${path}`],
      curlTimeoutMs,
    );
    return { res, elapsedMs: performance.now() - start, closed };
  }

  describe('route timeouts', () => {
    it('timeouts.requestMs answers 504 REQUEST_TIMEOUT long before the upstream would, and aborts the upstream request', async () => {
      const { res, elapsedMs, closed } = await slowRequest('/request-timeout');
      expect(res.status).toBe(504);
      expect(res.header('x-weft-error')).toBe('REQUEST_TIMEOUT');
      expect(elapsedMs).toBeGreaterThanOrEqual(290);
      expect(elapsedMs).toBeLessThan(2000);
      expect(await closed).toBe(false);
    });

    it('timeouts.backendRequestMs answers 504 UPSTREAM_TIMEOUT before the longer request timeout, and aborts the upstream request', async () => {
      const { res, elapsedMs, closed } = await slowRequest('/backend-timeout');
      expect(res.status).toBe(504);
      expect(res.header('x-weft-error')).toBe('UPSTREAM_TIMEOUT');
      expect(elapsedMs).toBeLessThan(2000);
      expect(await closed).toBe(false);
    });

    it('timeouts.backendRequestMs applies on its own when requestMs is 0 (disabled)', async () => {
      const { res, elapsedMs, closed } = await slowRequest('/backend-only');
      expect(res.status).toBe(504);
      expect(res.header('x-weft-error')).toBe('UPSTREAM_TIMEOUT');
      expect(elapsedMs).toBeLessThan(2000);
      expect(await closed).toBe(false);
    });

    it('an upstream that answers within both timeouts gets its response through', async () => {
      const { res, closed } = await slowRequest('/in-time?delay=100');
      expect(res.status).toBe(200);
      expect(res.body).toBe('late answer');
      expect(res.header('x-weft-error')).toBeUndefined();
      expect(await closed).toBe(true);
    });

    it('a request timeout after the response head cuts the downstream stream and aborts the upstream', async () => {
      const { res, elapsedMs, closed } = await slowRequest('/stall-body?delay=60000');
      expect(res.status).toBe(200);
      expect(res.exitCode).toBe(18); // CURLE_PARTIAL_FILE: the proxy closed before content-length
      expect(res.body).toBe('first bytes');
      expect(elapsedMs).toBeLessThan(2000);
      expect(await closed).toBe(false);
    });

    it('without a timeout, the client going away aborts the upstream request', async () => {
      const { res, closed } = await slowRequest('/no-timeout', [], 1000);
      expect(res.exitCode).toBe(28); // CURLE_OPERATION_TIMEDOUT: curl gave up after 1 s
      expect(await closed).toBe(false);
    });
  });

  describe('upstream failures', () => {
    it('a refused connection answers 503 UPSTREAM_CONNECT_FAILURE', async () => {
      const res = await curl(['-H', 'Host: refused', `${base}/x`]);
      expect(res.status).toBe(503);
      expect(res.header('x-weft-error')).toBe('UPSTREAM_CONNECT_FAILURE');
    });

    it('an upstream that closes the connection before responding answers 502 UPSTREAM_RESET', async () => {
      const res = await curl(['-H', 'Host: reset', `${base}/x`]);
      expect(res.status).toBe(502);
      expect(res.header('x-weft-error')).toBe('UPSTREAM_RESET');
    });

    it('a request with a body to a resetting upstream answers 502 UPSTREAM_RESET without a retry', async () => {
      const before = reset.seen.length;
      const res = await curl(['-H', 'Host: reset', '--data-binary', 'payload', `${base}/x`]);
      expect(res.status).toBe(502);
      expect(res.header('x-weft-error')).toBe('UPSTREAM_RESET');
      expect(reset.seen.length - before).toBe(1);
    });

    it('an upstream that dies mid-body cuts the downstream response short', async () => {
      const res = await curl(['-H', 'Host: truncate', `${base}/x`]);
      expect(res.status).toBe(200);
      expect(res.exitCode).toBe(18);
      expect(res.body).toBe('only the first bytes');
    });

    it('an upstream that sends an invalid HTTP response answers 502 UPSTREAM_PROTOCOL_ERROR', async () => {
      const res = await curl(['-H', 'Host: garbage', `${base}/x`]);
      expect(res.status).toBe(502);
      expect(res.header('x-weft-error')).toBe('UPSTREAM_PROTOCOL_ERROR');
    });

    it('a cluster with no endpoints answers 503 NO_HEALTHY_UPSTREAM', async () => {
      const res = await curl(['-H', 'Host: empty', `${base}/x`]);
      expect(res.status).toBe(503);
      expect(res.header('x-weft-error')).toBe('NO_HEALTHY_UPSTREAM');
    });

    it('a cluster whose only endpoint is UNHEALTHY answers 503 NO_HEALTHY_UPSTREAM and sends nothing to it', async () => {
      const res = await curl(['-H', 'Host: unhealthy', `${base}/x`]);
      expect(res.status).toBe(503);
      expect(res.header('x-weft-error')).toBe('NO_HEALTHY_UPSTREAM');
      expect(unhealthyBackend.seen).toHaveLength(0);
    });

    it('keeps serving after failures: the slow upstream still answers through the same sidecar', async () => {
      const { res } = await slowRequest('/in-time?delay=0');
      expect(res.status).toBe(200);
      expect(res.body).toBe('late answer');
      const unrelated = await curl(['-H', 'Host: unhealthy', `${base}/x`]);
      expect(unrelated.status).toBe(503);
      expect(() => echoOf(unrelated)).toThrow();
    });
  });
});
