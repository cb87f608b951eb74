/**
 * Shared helpers for the upstream unit tests: a seeded random source, fake endpoints for balancer
 * tests, real HTTP upstreams on 127.0.0.1:0, and polling with a deadline (never sleeping as sync).
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Pool } from 'undici';
import type { EndpointPool, PickContext, UpstreamEndpoint } from '../../../sidecar/proxy/upstream/types.ts';

/** mulberry32: a small deterministic PRNG in [0, 1). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function ctx(random: () => number, hashKey?: string): PickContext {
  return { random, hashKey };
}

/** An endpoint without a real pool, for balancer tests. */
export function fakeEndpoint(key: string, weight = 1, activeRequests = 0): UpstreamEndpoint {
  return { key, origin: `http://${key}`, pool: null as unknown as Pool, labels: {}, weight, activeRequests };
}

/** Counts of `pick` results by endpoint key over `n` picks. */
export function tally(n: number, pick: () => UpstreamEndpoint | undefined): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const key = pick()?.key ?? 'none';
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** Resolves once `cond()` is true; rejects after `timeoutMs`. Polls every few milliseconds. */
export async function until(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export interface Upstream {
  readonly server: Server;
  port: number;
  /** TCP connections accepted so far. */
  connections: number;
  /** Requests received so far. */
  requests: number;
}

/**
 * A real HTTP server on `host`:0 answering 200 with body `name` (or via `handler`).
 * Each response carries `x-upstream: name`.
 */
export async function startUpstream(
  name: string,
  handler?: (req: IncomingMessage, res: ServerResponse) => void,
  host = '127.0.0.1',
): Promise<Upstream> {
  const server = createServer((req, res) => {
    upstream.requests++;
    res.setHeader('x-upstream', name);
    if (handler) handler(req, res);
    else res.end(name);
  });
  const upstream: Upstream = { server, port: 0, connections: 0, requests: 0 };
  server.on('connection', () => {
    upstream.connections++;
  });
  server.listen(0, host);
  await once(server, 'listening');
  upstream.port = (server.address() as AddressInfo).port;
  return upstream;
}

/** Closes a server and every connection it still has. */
export async function stopUpstream(upstream: Upstream): Promise<void> {
  if (!upstream.server.listening) return;
  const closed = once(upstream.server, 'close');
  upstream.server.close();
  upstream.server.closeAllConnections();
  await closed;
}

/** GET `/` through `pool`; returns status and body text. */
export async function get(
  endpointPool: EndpointPool,
  path = '/',
): Promise<{ status: number; body: string; from: string }> {
  const pool = endpointPool as Pool;
  const res = await pool.request({ method: 'GET', path });
  const body = await res.body.text();
  return { status: res.statusCode, body, from: String(res.headers['x-upstream']) };
}

/**
 * Waits until every connection of `pool` is free again. undici marks a client free on its `drain`
 * event, a macrotask after the response body resolves; a request sent before that opens a new socket.
 */
export function poolIdle(endpointPool: EndpointPool): Promise<void> {
  const pool = endpointPool as Pool;
  return until(() => pool.stats.connected > 0 && pool.stats.free === pool.stats.connected, 5000, 'idle pool');
}
