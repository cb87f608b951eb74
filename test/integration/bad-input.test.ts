/**
 * The bad-input corpus (test/corpus/http1.jsonl, one case per line) written on raw sockets
 * against a `weft sidecar` process's outbound listener (plain text) and inbound listener (mTLS,
 * STRICT), and against a `weft gateway` process's listeners: plain HTTP, and HTTPS terminating TLS
 * (the edge filters and `serverTls` of a real gateway). Each case names the answers it may get (status codes, or `close`: the
 * connection closed with no response) and whether it may reach the upstream; cases that are
 * refused must leave the upstream untouched, checked with a marker request sent after each case
 * (the upstream sees the marker, and nothing else, since the case began). After the corpus the
 * process is still serving and holds no more file descriptors than before it.
 *
 * Corpus line fields: name, send (the bytes; `{{text*N}}` repeats `text` N times), expect,
 * reaches (the request is forwarded), forwardedPath, upstreamAbsent (header names the upstream
 * must not see), listeners (only on these kinds of listener: outbound, inbound, gateway), partialBody (a chunked body found malformed mid-stream: the upstream saw its
 * start and an abort, never a complete request), responseAbsent (strings the response head must
 * not contain), rfc (why).
 *
 * Slow clients (issue 10: slowloris, slow bodies) are data too: `steps` instead of `send` — `{send}`
 * writes bytes, `{pauseMs}` waits, `{trickle, everyMs, times}` writes `trickle` at once and then every
 * `everyMs` ms, `times` times in all; writing stops as soon as an answer comes, and after the last step
 * the client stalls (keeps the connection open, sends nothing) until an answer or 10 s. The timing is the
 * input here, not synchronisation. With them: error (the `x-weft-error` kind the answer must carry),
 * notBeforeMs (the answer must not come sooner after the first byte: a timeout never fires early),
 * upstreamAborted (the upstream saw the request begin, then its abort: never a complete request).
 * So that those cases stay short, every listener here runs with small timeouts (`SLOW_LIMITS`:
 * header block 1 s, stream idle 1 s, whole request 2 s), far above what the other cases take.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bootstrap, Listener } from '../../sidecar/proxy/config/types.ts';
import { pollUntil } from '../support/mesh.ts';
import { createCa, type Leaf, spiffeIdOf, type TestCa, writeCertKey } from '../support/pki.ts';
import { type RunningSidecar, startSidecar } from '../support/sidecar.ts';
import { startUpstream, type Upstream } from '../support/upstream.ts';

/** One step of a slow client (see the header). */
type Step =
  | { readonly send: string }
  | { readonly pauseMs: number }
  | { readonly trickle: string; readonly everyMs: number; readonly times: number };

interface CorpusCase {
  readonly name: string;
  readonly send?: string;
  readonly steps?: readonly Step[];
  readonly expect: readonly (number | 'close')[];
  readonly reaches?: boolean;
  readonly forwardedPath?: string;
  readonly upstreamAbsent?: readonly string[];
  /** Only on these listeners (default: all). */
  readonly listeners?: readonly string[];
  /** A streamed body turned out malformed: the upstream may see the start of it, then an abort. */
  readonly partialBody?: boolean;
  /** Strings the response head must not contain (e.g. a header a decoded CR LF would inject). */
  readonly responseAbsent?: readonly string[];
  /** The `x-weft-error` the answer carries. */
  readonly error?: string;
  /** The answer comes no sooner than this after the first byte (ms). */
  readonly notBeforeMs?: number;
  /** The upstream saw the request begin and then its abort, never a complete request. */
  readonly upstreamAborted?: boolean;
  readonly rfc?: string;
}

/** The listeners' timeouts here (see the header). */
const SLOW_LIMITS = { requestHeadersTimeoutMs: 1000, streamIdleTimeoutMs: 1000, requestTimeoutMs: 2000 };

const CORPUS = fileURLToPath(new URL('../corpus/http1.jsonl', import.meta.url));
const cases: CorpusCase[] = readFileSync(CORPUS, 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => JSON.parse(l) as CorpusCase);

/** Expands `{{text*N}}` templates. */
function bytesOf(send: string): Buffer {
  return Buffer.from(
    send.replace(/\{\{([\s\S]+?)\*(\d+)\}\}/g, (_, text: string, n: string) => text.repeat(Number(n))),
    'latin1',
  );
}

const TD = 'test.local';
let upstream: Upstream;
let sidecar: RunningSidecar;
let gateway: RunningSidecar;
let ca: TestCa;
let client: Leaf;
/** Every upstream request and the raw bytes each upstream connection received. */
let rawBytes = 0;
let upstreamParseErrors = 0;

function listener(
  name: string,
  direction: NonNullable<Listener['direction']>,
  extra: Partial<Listener> = {},
): Listener {
  return {
    name,
    address: '127.0.0.1',
    port: 0,
    direction,
    routeConfigName: 'r',
    limits: SLOW_LIMITS,
    rbac: {
      deny: [{ name: 'default/no-admin/rule-0', to: [{ paths: ['/admin', '/admin/*'] }] }],
    },
    ...extra,
  };
}

function bootstrap(
  id: string,
  upstreamPort: number,
  listeners: Listener[],
  extra: Partial<Bootstrap> = {},
): Bootstrap {
  return {
    node: { id, service: 'corpus', namespace: 'default', workload: 'corpus-v1' },
    admin: { address: '127.0.0.1', port: 0 },
    listeners,
    routes: [
      {
        name: 'r',
        virtualHosts: [
          {
            name: 'all',
            domains: ['*'],
            routes: [
              // A redirect builds Location from the request's path and Host: the generated-header cases.
              {
                name: 'to-https',
                matches: [{ path: { type: 'PATH_PREFIX', value: '/redirect' } }],
                redirect: { scheme: 'https', statusCode: 301 },
              },
              { name: 'all', route: { clusters: [{ name: 'up' }] } },
            ],
          },
        ],
      },
    ],
    clusters: [{ name: 'up' }],
    endpoints: [{ clusterName: 'up', endpoints: [{ address: '127.0.0.1', port: upstreamPort }] }],
    trustBundle: { trustDomain: TD, rootsPem: [ca.certPem] },
    ...extra,
  };
}

beforeAll(async () => {
  ca = createCa('corpus root');
  client = ca.leaf(spiffeIdOf(TD, 'client'));
  upstream = await startUpstream(undefined, (server) => {
    server.on('connection', (s: Socket) => s.on('data', (b: Buffer) => (rawBytes += b.length)));
    // counted, then the connection closed as node's default handler does (an aborted body ends here too)
    server.on('clientError', (_err: Error, socket: Socket) => {
      upstreamParseErrors++;
      socket.destroy();
    });
  });
  const dir = await mkdtemp(join(tmpdir(), 'weft-corpus-'));
  const files = await writeCertKey(dir, 'corpus', ca.leaf(spiffeIdOf(TD, 'corpus')));
  const serving = ca.leaf('', { uris: [] });
  [sidecar, gateway] = await Promise.all([
    startSidecar(
      bootstrap('corpus-1', upstream.port, [
        listener('outbound', 'OUTBOUND'),
        listener('inbound', 'INBOUND', { tls: { mode: 'STRICT' } }),
      ]),
      { extraArgs: ['--cert', files.cert, '--key', files.key] },
    ),
    startSidecar(
      bootstrap(
        'corpus-gw',
        upstream.port,
        [
          listener('gateway', 'GATEWAY'),
          listener('gateway-tls', 'GATEWAY', { serverTls: { certificates: [{ certificateName: 'edge' }] } }),
        ],
        { certificates: [{ name: 'edge', certChainPem: serving.certPem, privateKeyPem: serving.keyPem }] },
      ),
      { role: 'gateway' },
    ),
  ]);
});

afterAll(async () => {
  await Promise.all([sidecar?.stop(), gateway?.stop()]);
  await upstream?.close();
});

/** The listeners under test: the process that owns each, and the kind of listener it is. */
const TARGETS = {
  outbound: { process: () => sidecar, kind: 'outbound' },
  inbound: { process: () => sidecar, kind: 'inbound' },
  gateway: { process: () => gateway, kind: 'gateway' },
  'gateway-tls': { process: () => gateway, kind: 'gateway' },
} as const;
type Target = keyof typeof TARGETS;

function open(name: Target): Promise<Socket> {
  const port = TARGETS[name].process().ports[name] as number;
  return new Promise((resolve, reject) => {
    const s =
      name === 'gateway-tls'
        ? tlsConnect(
            // the chain is verified; the name is not (the serving certificate names only 127.0.0.1)
            {
              host: '127.0.0.1',
              port,
              ca: ca.certPem,
              servername: 'corpus.test',
              checkServerIdentity: () => undefined,
            },
            () => resolve(s),
          )
        : name === 'inbound'
          ? tlsConnect(
              {
                host: '127.0.0.1',
                port,
                ca: ca.certPem,
                cert: client.certPem,
                key: client.keyPem,
                rejectUnauthorized: false,
              },
              () => resolve(s),
            )
          : netConnect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

/** The steps of a case (`send` is one step). */
function stepsOf(c: CorpusCase): readonly Step[] {
  return c.steps ?? [{ send: c.send ?? '' }];
}

/**
 * Writes `steps` (a plain request is one `send` step); resolves with the status and head (latin1) of
 * the first response, or status 'close' when none came, and the time from the first byte to it (ms).
 */
async function exchange(
  name: Target,
  steps: readonly Step[],
): Promise<{ status: number | 'close'; head: string; afterMs: number }> {
  const s = await open(name);
  const startMs = performance.now();
  return new Promise((resolve) => {
    let got = '';
    let answered = false;
    const timer = setTimeout(() => done('close'), 10_000);
    const done = (v: number | 'close') => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ status: v, head: got.split('\r\n\r\n')[0] ?? '', afterMs: performance.now() - startMs });
    };
    s.on('data', (b: Buffer) => {
      got += b.toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3}) /.exec(got);
      if (m && got.includes('\r\n\r\n')) done(Number(m[1]));
    });
    s.on('error', () => undefined);
    s.on('close', () => done('close'));
    void play(s, steps, () => answered);
  });
}

/** Writes `steps` on `s`, stopping once `stop()` is true. */
async function play(s: Socket, steps: readonly Step[], stop: () => boolean): Promise<void> {
  const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  for (const step of steps) {
    if (stop()) return;
    if ('send' in step) s.write(bytesOf(step.send), () => undefined);
    else if ('pauseMs' in step) await wait(step.pauseMs);
    else {
      for (let i = 0; i < step.times && !stop(); i++) {
        if (i > 0) await wait(step.everyMs);
        if (!stop()) s.write(bytesOf(step.trickle), () => undefined);
      }
    }
  }
}

/** Sends a marker request and waits until the upstream saw it; returns what the upstream saw since `from`. */
async function settle(name: Target, from: number, marker: string): Promise<IncomingMessage[]> {
  const { status } = await exchange(name, [{ send: `GET /__marker/${marker} HTTP/1.1\r\nHost: a\r\n\r\n` }]);
  expect(status, 'the marker request').toBe(200);
  await pollUntil('the marker to reach the upstream', async () =>
    upstream.seen.some((r) => r.url === `/__marker/${marker}`) ? true : undefined,
  );
  return upstream.seen.slice(from).filter((r) => !r.url?.startsWith('/__marker/'));
}

async function fdCount(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length;
}

describe.each(Object.keys(TARGETS) as Target[])('bad-input corpus on the %s listener', (name) => {
  const { kind } = TARGETS[name];
  const pid = (): number => TARGETS[name].process().pid;
  let fdsBefore = 0;
  beforeAll(async () => {
    fdsBefore = await fdCount(pid());
  });

  const here = cases.filter((c) => c.listeners === undefined || c.listeners.includes(kind));
  it.each(here.map((c) => [c.name, c, cases.indexOf(c)] as const))('%s', async (_, c, i) => {
    const from = upstream.seen.length;
    const parseErrors = upstreamParseErrors;
    const { status, head, afterMs } = await exchange(name, stepsOf(c));
    expect(c.expect, `${c.name} (${c.rfc ?? ''}): got ${status}`).toContain(status);
    if (c.error !== undefined && status !== 'close') {
      expect(head, 'the error kind of the answer').toMatch(
        new RegExp(`\r\nx-weft-error: ${c.error}(\r\n|$)`, 'i'),
      );
    }
    if (c.notBeforeMs !== undefined)
      expect(afterMs, 'time to the answer (ms)').toBeGreaterThanOrEqual(c.notBeforeMs);
    if (c.upstreamAborted === true) {
      // the upstream saw the request begin; wait for its abort (the proxy cut the upstream request)
      const begun = await pollUntil('the request to reach the upstream', async () =>
        upstream.seen.length > from ? upstream.seen[from] : undefined,
      );
      await pollUntil('the upstream request to be aborted', async () => (begun.destroyed ? true : undefined));
      expect(begun.complete, 'a stalled body reached the upstream whole').toBe(false);
    }
    const seen = await settle(name, from, `${name}-${i}`);
    if (c.partialBody !== true && c.upstreamAborted !== true) {
      expect(upstreamParseErrors - parseErrors, 'malformed bytes reached the upstream').toBe(0);
    }
    if (c.reaches === true) {
      expect(seen).toHaveLength(1);
      if (c.forwardedPath !== undefined) expect(seen[0]?.url).toBe(c.forwardedPath);
    } else if (c.partialBody === true || c.upstreamAborted === true) {
      for (const r of seen) expect(r.complete, 'a malformed body reached the upstream whole').toBe(false);
    } else if (!(c.expect.includes(200) && status === 200)) {
      expect(
        seen.map((r) => r.url),
        'a refused request reached the upstream',
      ).toEqual([]);
    }
    for (const text of c.responseAbsent ?? []) expect(head, 'the response head').not.toContain(text);
    for (const h of c.upstreamAbsent ?? []) {
      for (const r of seen) expect(r.headers[h], `${h} reached the upstream`).toBeUndefined();
    }
  });

  it('still serves, and holds no more file descriptors than before', async () => {
    expect((await exchange(name, [{ send: 'GET /ok HTTP/1.1\r\nHost: a\r\n\r\n' }])).status).toBe(200);
    await pollUntil('file descriptors to return to their level before the corpus', async () =>
      (await fdCount(pid())) <= fdsBefore + 2 ? true : undefined,
    );
  });
});
