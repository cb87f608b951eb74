/**
 * Graceful shutdown of `weft sidecar` (sidecar/run.ts, HttpListener.close): on SIGTERM the admin
 * `/ready` turns 503, the listeners stop accepting, idle keep-alive connections are closed,
 * in-flight requests get the drain period (`drainTimeoutMs`, default 5 s) to finish, and the
 * process exits 0. A request still running when the drain period ends is cut, and its upstream
 * request cancelled. Real sidecar processes signalled by pid, curl and raw sockets as clients.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_DRAIN_MS } from '../../sidecar/proxy/http/listener.ts';
import { type RunningSidecar, startSidecar } from '../support/sidecar.ts';
import { startUpstream, type Upstream } from '../support/upstream.ts';
import { forwardAllBootstrap, pollUntil, runCurl, within } from './intermediary-helpers.ts';

/** How long the upstream takes to answer /slow, at least (ms). */
const SLOW_MS = 500;

/** The test opens this gate once it has observed the draining state; /slow waits for it. */
let gate = Promise.withResolvers<void>();
let slowArrived = Promise.withResolvers<void>();
/** Resolves when /hang arrives, with its socket's close time (an object: a bare promise would be adopted). */
let hangArrived = Promise.withResolvers<{ closed: Promise<number> }>();

function handler(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  if (req.url === '/slow') {
    const arrivedAt = performance.now();
    slowArrived.resolve();
    void gate.promise.then(() => {
      // The answer comes no sooner than SLOW_MS after the request arrived.
      setTimeout(() => res.end('slow-done'), Math.max(0, SLOW_MS - (performance.now() - arrivedAt)));
    });
    return;
  }
  if (req.url === '/hang') {
    hangArrived.resolve({
      closed: new Promise((resolve) => req.socket.once('close', () => resolve(performance.now()))),
    });
    return; // never answers
  }
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 4 });
  res.end('fast');
}

let upstream: Upstream;
/** Default drain period (5 s). */
let draining: RunningSidecar;
/** drainTimeoutMs 1000. */
let shortDrain: RunningSidecar;

beforeAll(async () => {
  upstream = await startUpstream(handler);
  [draining, shortDrain] = await Promise.all([
    startSidecar(forwardAllBootstrap(upstream.port)),
    startSidecar(forwardAllBootstrap(upstream.port, { drainTimeoutMs: 1000 })),
  ]);
});

afterAll(async () => {
  await Promise.all([draining?.stop(), shortDrain?.stop()]);
  await upstream?.close();
});

/** Status of the admin `/ready` (0 when the admin listener is gone). */
async function ready(sidecar: RunningSidecar): Promise<number> {
  const run = await runCurl([
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    `http://127.0.0.1:${sidecar.adminPort}/ready`,
  ]);
  return Number(run.stdout);
}

/** A keep-alive connection that has completed one request and is now idle. */
async function idleKeepAliveConnection(url: string): Promise<{ socket: Socket; closed: Promise<void> }> {
  const { port } = new URL(url);
  const socket = connect(Number(port), '127.0.0.1');
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  let received = '';
  socket.setEncoding('latin1');
  const answered = new Promise<void>((resolve, reject) => {
    socket.on('data', (chunk: string) => {
      received += chunk;
      if (received.endsWith('\r\n\r\nfast')) resolve();
    });
    socket.once('error', reject);
  });
  socket.write('GET /fast HTTP/1.1\r\nHost: idle\r\n\r\n');
  await within(answered, 5000, 'the idle connection first answer');
  expect(received).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  return { socket, closed };
}

describe('SIGTERM with a request in flight', () => {
  it('turns /ready 503, refuses new connections, closes idle ones, completes the in-flight request 200 and exits 0 within the drain period', async ({
    annotate,
  }) => {
    const url = draining.url('outbound');
    expect(await ready(draining)).toBe(200);
    const idle = await idleKeepAliveConnection(url);
    gate = Promise.withResolvers<void>();
    slowArrived = Promise.withResolvers<void>();
    const inflight = runCurl(['-i', `${url}/slow`]);
    await within(slowArrived.promise, 5000, 'the in-flight request reaching the upstream');

    const sigtermAt = performance.now();
    let exitedAt = 0;
    const exited = draining.stop(DEFAULT_DRAIN_MS * 2).then((code) => {
      exitedAt = performance.now();
      return code;
    });

    // While the request is still in flight:
    await pollUntil(async () => (await ready(draining)) === 503, 2000, '/ready turning 503');
    await pollUntil(
      async () => (await runCurl(['-o', '/dev/null', `${url}/fast`])).exitCode === 7, // curl: couldn't connect
      2000,
      'new connections being refused',
    );
    await within(idle.closed, 1000, 'the idle keep-alive connection being closed');
    expect(exitedAt).toBe(0);
    gate.resolve();

    const done = await inflight;
    expect(done.exitCode, done.stderr).toBe(0);
    expect(done.stdout).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(done.stdout).toMatch(/\r\nconnection: close\r\n/i);
    expect(done.stdout.endsWith('\r\n\r\nslow-done')).toBe(true);
    expect(await exited).toBe(0);
    const exitMs = exitedAt - sigtermAt;
    await annotate(
      `exited ${exitMs.toFixed(0)} ms after SIGTERM (in-flight request took at least ${SLOW_MS} ms)`,
    );
    expect(exitMs).toBeGreaterThanOrEqual(SLOW_MS - 50);
    expect(exitMs).toBeLessThan(DEFAULT_DRAIN_MS);
    expect(draining.output.some((line) => line.includes('"msg":"draining"'))).toBe(true);
    expect(draining.output.some((line) => line.includes('"msg":"stopped"'))).toBe(true);
  });
});

describe('SIGTERM with a request that outlives the drain period', () => {
  it('cuts the request when drainTimeoutMs (1 s) runs out, cancels its upstream request and exits 0', async ({
    annotate,
  }) => {
    hangArrived = Promise.withResolvers<{ closed: Promise<number> }>();
    const inflight = runCurl([`${shortDrain.url('outbound')}/hang`]);
    const { closed: upstreamClosed } = await within(
      hangArrived.promise,
      5000,
      'the hung request reaching the upstream',
    );

    const sigtermAt = performance.now();
    const code = await shortDrain.stop(10_000);
    const exitMs = performance.now() - sigtermAt;
    expect(code).toBe(0);
    await annotate(`exited ${exitMs.toFixed(0)} ms after SIGTERM with drainTimeoutMs 1000`);
    expect(exitMs).toBeGreaterThanOrEqual(900);
    expect(exitMs).toBeLessThan(3000);

    const cut = await inflight;
    expect([52, 56]).toContain(cut.exitCode); // curl: empty reply / connection reset, no status
    await within(upstreamClosed, 1000, 'the upstream request being cancelled');
  });
});
