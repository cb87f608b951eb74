/**
 * The keep-alive race (RFC 9112 §9.3.1, §9.8): an upstream closes an idle connection at about
 * the moment the proxy reuses it. Two node:http upstreams expire idle connections after 1000 ms:
 * - `advertised` is node:http with `keepAliveTimeout = 1000` (and Node 24's extra
 *   `keepAliveTimeoutBuffer` set to 0, so the socket really goes at 1 s); it says so with
 *   `Keep-Alive: timeout=1`. The pool must keep reusing its connections while retiring them
 *   before the upstream does.
 * - `racing` sends no Keep-Alive hint, so the pool's own 4 s idle timeout outlives the upstream's
 *   1 s. On loopback the upstream's FIN reaches the proxy within microseconds, so the real race
 *   window is almost never hit; this upstream makes it certain instead: a request arriving on a
 *   connection idle for 1 s or more is met by closing the connection without an answer, which
 *   is what a client sees when its request crosses the upstream's FIN. The proxy must retry
 *   those idempotent requests on another connection and never show the client an error.
 * 80 lanes of curl clients (40 per upstream) send 2080 requests through one sidecar with gaps
 * drawn between 800 and 1200 ms (load shaping), so idle connections get picked up right around
 * the upstream's timeout. The sidecar's access log (`attempts`) counts the retries.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { outboundBootstrap, type RunningSidecar, startSidecar } from '../support/sidecar.ts';
import { startUpstream, type Upstream } from '../support/upstream.ts';
import { runCurl } from './intermediary-helpers.ts';

const UPSTREAM_KEEP_ALIVE_MS = 1000;
const LANES_PER_UPSTREAM = 40;
const REQUESTS_PER_LANE = 26;
const MIN_GAP_MS = 800;
const MAX_GAP_MS = 1200;
const KINDS = ['advertised', 'racing'] as const;
type Kind = (typeof KINDS)[number];

interface RaceUpstream {
  readonly upstream: Upstream;
  connections: number;
  /** Requests the racing upstream met by closing their (expired) connection. */
  expired: number;
}

const upstreams = {} as Record<Kind, RaceUpstream>;
let sidecar: RunningSidecar;
/** Lane results per upstream, filled by the one run all tests below look at. */
const results = {} as Record<Kind, { statuses: string[]; elapsedS: number }>;

async function startRaceUpstream(kind: Kind): Promise<RaceUpstream> {
  const state = { connections: 0, expired: 0 } as RaceUpstream & { upstream: Upstream };
  /** When each connection last finished a response (ms, performance.now()). */
  const idleSince = new WeakMap<Socket, number>();
  state.upstream = await startUpstream(
    (req: IncomingMessage, res: ServerResponse) => {
      const since = idleSince.get(req.socket);
      if (kind === 'racing' && since !== undefined && performance.now() - since >= UPSTREAM_KEEP_ALIVE_MS) {
        state.expired++;
        req.socket.destroy(); // the idle timer won: the request meets a closed connection
        return;
      }
      req.resume();
      req.on('end', () => {
        // Load shaping: 50-150 ms of service time keeps several connections busy at once, so the
        // pool spreads requests over more connections and their idle times straddle 1 s.
        setTimeout(
          () => {
            // An explicit Connection field stops Node from adding its `Keep-Alive: timeout=N` hint.
            if (kind === 'racing') res.setHeader('connection', 'keep-alive');
            res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 });
            res.end('ok');
            res.once('finish', () => idleSince.set(req.socket, performance.now()));
          },
          50 + Math.random() * 100,
        );
      });
    },
    (server) => {
      // `racing` keeps its sockets open (5 s) so that requests can arrive after its 1 s expiry.
      server.keepAliveTimeout = kind === 'racing' ? 5000 : UPSTREAM_KEEP_ALIVE_MS;
      (server as { keepAliveTimeoutBuffer?: number }).keepAliveTimeoutBuffer = 0;
      server.on('connection', () => {
        state.connections++;
      });
    },
  );
  return state;
}

const gap = () =>
  new Promise((resolve) => setTimeout(resolve, MIN_GAP_MS + Math.random() * (MAX_GAP_MS - MIN_GAP_MS)));

/** One client lane: a request, a gap, the next request, ...; returns the statuses (or curl errors). */
async function lane(url: string): Promise<string[]> {
  const statuses: string[] = [];
  await new Promise((resolve) => setTimeout(resolve, Math.random() * MAX_GAP_MS)); // spread lane starts
  for (let i = 0; i < REQUESTS_PER_LANE; i++) {
    const run = await runCurl(['-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', url]);
    statuses.push(run.exitCode === 0 ? run.stdout : `curl exit ${run.exitCode}: ${run.stderr.trim()}`);
    if (i < REQUESTS_PER_LANE - 1) await gap();
  }
  return statuses;
}

async function lanes(kind: Kind): Promise<void> {
  const started = performance.now();
  const url = `${sidecar.url('outbound')}/${kind}`;
  const statuses = (await Promise.all(Array.from({ length: LANES_PER_UPSTREAM }, () => lane(url)))).flat();
  results[kind] = { statuses, elapsedS: (performance.now() - started) / 1000 };
}

/** Access-log entries of the sidecar for `/<kind>`. */
function accessLog(kind: Kind): { status: number; attempts: number }[] {
  return sidecar.output
    .filter((line) => line.includes('"component":"access"'))
    .map((line) => JSON.parse(line) as { path: string; status: number; attempts: number })
    .filter((entry) => entry.path === `/${kind}`);
}

beforeAll(async () => {
  upstreams.advertised = await startRaceUpstream('advertised');
  upstreams.racing = await startRaceUpstream('racing');
  sidecar = await startSidecar(
    outboundBootstrap({
      virtualHosts: [
        {
          name: 'all',
          domains: ['*'],
          routes: KINDS.map((kind) => ({
            name: kind,
            matches: [{ path: { type: 'PATH_PREFIX' as const, value: `/${kind}` } }],
            route: { clusters: [{ name: kind }] },
          })),
        },
      ],
      clusters: KINDS.map((kind) => ({ name: kind })),
      endpoints: KINDS.map((kind) => ({
        clusterName: kind,
        endpoints: [{ address: '127.0.0.1', port: upstreams[kind].upstream.port }],
      })),
    }),
    { extraArgs: ['--access-log'] },
  );
  // Both upstreams under load at once: 2080 requests in about 30 s.
  await Promise.all(KINDS.map((kind) => lanes(kind)));
}, 90_000);

afterAll(async () => {
  await sidecar?.stop();
  for (const kind of KINDS) await upstreams[kind]?.upstream.close();
});

describe.each(KINDS)('an upstream that closes idle connections after 1 s (%s)', (kind) => {
  it('answers every request 200', async ({ annotate }) => {
    const { statuses, elapsedS } = results[kind];
    const { upstream, connections, expired } = upstreams[kind];
    const retried = accessLog(kind).filter((e) => e.attempts > 1).length;
    await annotate(
      `${kind}: ${statuses.length} requests in ${elapsedS.toFixed(1)} s, ` +
        `${statuses.filter((s) => s !== '200').length} non-200, ${connections} upstream connections ` +
        `(${(statuses.length / connections).toFixed(1)} requests each), ${retried} retried by the proxy, ` +
        `${upstream.seen.length} requests seen upstream, ${expired} met by an expired connection`,
    );
    expect(statuses).toHaveLength(LANES_PER_UPSTREAM * REQUESTS_PER_LANE);
    expect(statuses.filter((s) => s !== '200')).toEqual([]);
  });

  it('reuses upstream connections (fewer than half as many connections as requests)', () => {
    expect(upstreams[kind].connections).toBeLessThan(results[kind].statuses.length / 2);
  });
});

it('retries each request that met a connection the upstream had just closed, once, and answers it 200', () => {
  const log = accessLog('racing');
  expect(log).toHaveLength(LANES_PER_UPSTREAM * REQUESTS_PER_LANE);
  const { expired, upstream } = upstreams.racing;
  // The race did happen, several times, and every lost attempt was made good by one retry.
  expect(expired).toBeGreaterThanOrEqual(5);
  expect(log.filter((e) => e.attempts === 2)).toHaveLength(expired);
  expect(log.every((e) => e.attempts <= 2 && e.status === 200)).toBe(true);
  expect(upstream.seen.length).toBe(log.length + expired);
});

it('retires advertised connections before the upstream closes them, so none needs a retry', () => {
  expect(accessLog('advertised').every((e) => e.attempts === 1 && e.status === 200)).toBe(true);
});
