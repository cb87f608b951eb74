/**
 * The HTTP/2 bad-input corpus (test/corpus/http2.jsonl, one case per line) written frame by frame
 * on raw sockets to three listeners: a sidecar's outbound listener (h2c with prior knowledge), its
 * inbound listener (mTLS STRICT, ALPN h2, with a client certificate) and the listener of a real
 * `weft gateway` process terminating TLS (ALPN h2). Frames are data (test/support/h2-frames.ts).
 *
 * Per case the runner sends the client preface, an empty SETTINGS, the case's frames, then a
 * PING with the payload `weft-end` (the server has processed every frame before it once it ACKs
 * it, and a second PING after that ACK); it ACKs the server's SETTINGS. The outcome is, in order
 * of precedence: `GOAWAY:<code>` (the first GOAWAY), `close` (the connection closed before the end
 * PINGs were answered), the first stream answer (`<status>` of a response, `RST_STREAM:<code>`),
 * or `ignored` (the end PINGs were answered and every stream the client ended has nothing
 * pending: nothing happened). The case lists the outcomes it accepts.
 *
 * Asserted per case: the outcome; the upstream saw nothing of a refused case (a marker request
 * sent after the case is the only thing it saw since the case began), or exactly one request for
 * `reaches`; for cases of more than FLOOD_FRAMES frames, a well-behaved node:http2 client on the
 * same listener gets only 200s while the case runs. After the corpus: each process still serves,
 * and its descriptor count returns to its level before the corpus.
 *
 * Corpus line fields: name, frames (FrameSpec / FrameGroup, see h2-frames.ts), expect, reaches,
 * partialBody (the stream is reset for its body after it was forwarded: the upstream may see the
 * start of it and an abort, never a complete request), upstreamAbsent, listeners, rfc.
 * `:authority: slow` routes to a 30 s fault delay, which holds a stream open without forwarding it.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { type ClientHttp2Session, connect as h2connect } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bootstrap, Listener, RouteConfiguration } from '../../sidecar/proxy/config/types.ts';
import {
  awaitedStreams,
  CLIENT_PREFACE,
  ERROR_CODES,
  encodeFrames,
  FLAGS,
  FRAME_TYPES,
  type FrameItem,
  FrameReader,
  frame,
  responseStatus,
} from '../support/h2-frames.ts';
import { pollUntil } from '../support/mesh.ts';
import { createCa, type Leaf, spiffeIdOf, type TestCa, writeCertKey } from '../support/pki.ts';
import { type RunningSidecar, startSidecar } from '../support/sidecar.ts';
import { startUpstream, type Upstream } from '../support/upstream.ts';

type Outcome = number | string;

interface CorpusCase {
  readonly name: string;
  readonly frames: readonly FrameItem[];
  readonly expect: readonly Outcome[];
  readonly reaches?: boolean;
  readonly partialBody?: boolean;
  readonly upstreamAbsent?: readonly string[];
  readonly listeners?: readonly string[];
  readonly rfc?: string;
}

const CORPUS = fileURLToPath(new URL('../corpus/http2.jsonl', import.meta.url));
const cases: CorpusCase[] = readFileSync(CORPUS, 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => JSON.parse(l) as CorpusCase);

/** Cases of more frames than this run beside a well-behaved client. */
const FLOOD_FRAMES = 100;
/** Two PINGs end every case: the second is sent once the first is ACKed, so its ACK comes after
 * the server acted on everything it deferred while processing the case's frames. */
const END_PING = Buffer.from('weft-end', 'latin1');
const FIN_PING = Buffer.from('weft-fin', 'latin1');
const TD = 'test.local';

let upstream: Upstream;
let upstreamParseErrors = 0;
let sidecar: RunningSidecar;
let gateway: RunningSidecar;
let ca: TestCa;
let client: Leaf;
let server: Leaf;
let dir = '';

function routes(): RouteConfiguration[] {
  return [
    {
      name: 'r',
      virtualHosts: [
        {
          name: 'slow',
          domains: ['slow'],
          routes: [
            {
              name: 'slow',
              route: { clusters: [{ name: 'up' }] },
              fault: { delayMs: 30_000, delayPercent: 100 },
            },
          ],
        },
        { name: 'all', domains: ['*'], routes: [{ name: 'all', route: { clusters: [{ name: 'up' }] } }] },
      ],
    },
  ];
}

function listener(
  name: string,
  direction: NonNullable<Listener['direction']>,
  extra: Partial<Listener>,
): Listener {
  return {
    name,
    address: '127.0.0.1',
    port: 0,
    direction,
    routeConfigName: 'r',
    rbac: { deny: [{ name: 'default/no-admin/rule-0', to: [{ paths: ['/admin', '/admin/*'] }] }] },
    ...extra,
  };
}

function bootstrap(id: string, listeners: Listener[], extra: Partial<Bootstrap> = {}): Bootstrap {
  return {
    node: { id, service: 'corpus', namespace: 'default', workload: 'corpus-v1' },
    admin: { address: '127.0.0.1', port: 0 },
    listeners,
    routes: routes(),
    clusters: [{ name: 'up' }],
    endpoints: [{ clusterName: 'up', endpoints: [{ address: '127.0.0.1', port: upstream.port }] }],
    trustBundle: { trustDomain: TD, rootsPem: [ca.certPem] },
    ...extra,
  };
}

interface Target {
  readonly process: () => RunningSidecar;
  readonly port: () => number;
  /** TLS options (undefined: h2c with prior knowledge). */
  readonly tls?: () => { ca: string; cert?: string; key?: string };
}

const TARGETS: Readonly<Record<string, Target>> = {
  outbound: { process: () => sidecar, port: () => sidecar.ports.outbound as number },
  inbound: {
    process: () => sidecar,
    port: () => sidecar.ports.inbound as number,
    tls: () => ({ ca: ca.certPem, cert: client.certPem, key: client.keyPem }),
  },
  gateway: {
    process: () => gateway,
    port: () => gateway.ports.gateway as number,
    tls: () => ({ ca: ca.certPem }),
  },
};

beforeAll(async () => {
  ca = createCa('h2 corpus root');
  client = ca.leaf(spiffeIdOf(TD, 'client'));
  server = ca.leaf(spiffeIdOf(TD, 'edge'));
  upstream = await startUpstream(undefined, (s) => {
    s.on('clientError', () => upstreamParseErrors++);
  });
  dir = await mkdtemp(join(tmpdir(), 'weft-h2corpus-'));
  const files = await writeCertKey(dir, 'corpus', ca.leaf(spiffeIdOf(TD, 'corpus')));
  [sidecar, gateway] = await Promise.all([
    startSidecar(
      bootstrap('corpus-1', [
        listener('outbound', 'OUTBOUND', {}),
        listener('inbound', 'INBOUND', { tls: { mode: 'STRICT' } }),
      ]),
      { extraArgs: ['--cert', files.cert, '--key', files.key] },
    ),
    startSidecar(
      bootstrap(
        'corpus-gw',
        [listener('gateway', 'GATEWAY', { serverTls: { certificates: [{ certificateName: 'edge' }] } })],
        { certificates: [{ name: 'edge', certChainPem: server.certPem, privateKeyPem: server.keyPem }] },
      ),
      { role: 'gateway' },
    ),
  ]);
}, 60_000);

afterAll(async () => {
  await Promise.all([sidecar?.stop(), gateway?.stop()]);
  await upstream?.close();
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

/** A raw connection to `target`: TCP, or TLS that negotiated h2. */
function open(target: Target): Promise<Socket | TLSSocket> {
  const port = target.port();
  return new Promise((resolve, reject) => {
    const tls = target.tls?.();
    const s =
      tls === undefined
        ? netConnect({ host: '127.0.0.1', port }, () => resolve(s))
        : tlsConnect({ host: '127.0.0.1', port, ...tls, ALPNProtocols: ['h2'] }, () => {
            if ((s as TLSSocket).alpnProtocol === 'h2') resolve(s);
            else reject(new Error(`ALPN negotiated ${String((s as TLSSocket).alpnProtocol)}, not h2`));
          });
    s.once('error', reject);
  });
}

/** A well-behaved node:http2 client session on `target`. */
function goodSession(target: Target): ClientHttp2Session {
  const tls = target.tls?.();
  const url = `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${target.port()}`;
  const session = h2connect(url, tls ?? {});
  session.on('error', () => undefined);
  return session;
}

/** GET `path` on `session`; resolves with the status. */
function get(session: ClientHttp2Session, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'GET', ':path': path, ':authority': 'corpus' });
    let status = 0;
    req.on('response', (h) => {
      status = Number(h[':status']);
    });
    req.on('error', reject);
    req.resume();
    req.on('end', () => resolve(status));
  });
}

/**
 * Writes `frames` in batches of whole frames (so that a SETTINGS ACK or PING the reader writes in
 * between lands on a frame boundary), waiting for 'drain'; stops when the connection is gone.
 */
async function writeFrames(s: Socket, frames: readonly Buffer[]): Promise<void> {
  const BATCH = 64 * 1024;
  for (let at = 0; at < frames.length && !s.destroyed && s.writable; ) {
    const batch: Buffer[] = [];
    let bytes = 0;
    while (at < frames.length && bytes < BATCH) {
      const f = frames[at++] as Buffer;
      batch.push(f);
      bytes += f.length;
    }
    if (!s.write(Buffer.concat(batch), () => undefined)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          s.off('drain', done);
          s.off('close', done);
          resolve();
        };
        s.once('drain', done);
        s.once('close', done);
      });
    }
  }
}

/** Sends the case's frames on a new connection; resolves with its outcome. */
async function exchange(target: Target, items: readonly FrameItem[]): Promise<Outcome> {
  const frames = encodeFrames(items);
  const awaited = awaitedStreams(frames);
  const answered = new Set<number>();
  const s = await open(target);
  const reader = new FrameReader();
  let goaway: string | undefined;
  let streamAnswer: Outcome | undefined;
  let endAcked = false;
  return new Promise<Outcome>((resolve) => {
    const timer = setTimeout(() => finish('timeout'), 10_000);
    let finished = false;
    const finish = (closedOrTimeout?: string): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      s.destroy();
      // a connection error, then a close before the case was processed, then the stream answer
      const early = closedOrTimeout !== undefined && !endAcked ? closedOrTimeout : undefined;
      resolve(goaway ?? early ?? streamAnswer ?? closedOrTimeout ?? 'ignored');
    };
    const check = (): void => {
      if (goaway !== undefined) finish();
      else if (endAcked && [...awaited].every((id) => answered.has(id))) finish();
    };
    s.on('data', (chunk: Buffer) => {
      for (const f of reader.push(chunk)) {
        if (f.type === FRAME_TYPES.SETTINGS && (f.flags & FLAGS.ACK) === 0) {
          if (s.writable) s.write(frame(FRAME_TYPES.SETTINGS, FLAGS.ACK, 0, Buffer.alloc(0)));
        } else if (f.type === FRAME_TYPES.PING && (f.flags & FLAGS.ACK) !== 0 && f.payload.equals(END_PING)) {
          if (s.writable) s.write(frame(FRAME_TYPES.PING, 0, 0, FIN_PING));
        } else if (f.type === FRAME_TYPES.PING && (f.flags & FLAGS.ACK) !== 0 && f.payload.equals(FIN_PING)) {
          endAcked = true;
        } else if (f.type === FRAME_TYPES.GOAWAY) {
          goaway ??= `GOAWAY:${ERROR_CODES[f.payload.readUInt32BE(4)] ?? f.payload.readUInt32BE(4)}`;
        } else if (f.type === FRAME_TYPES.RST_STREAM) {
          answered.add(f.stream);
          streamAnswer ??= `RST_STREAM:${ERROR_CODES[f.payload.readUInt32BE(0)] ?? f.payload.readUInt32BE(0)}`;
        } else if (f.type === FRAME_TYPES.HEADERS && f.stream !== 0) {
          answered.add(f.stream);
          let block = f.payload;
          if ((f.flags & FLAGS.PADDED) !== 0) block = block.subarray(1, block.length - (block[0] as number));
          if ((f.flags & FLAGS.PRIORITY) !== 0) block = block.subarray(5);
          streamAnswer ??= responseStatus(block) ?? 'HEADERS:unreadable';
        }
      }
      check();
    });
    s.on('error', () => undefined);
    s.on('close', () => finish('close'));
    void writeFrames(s, [
      Buffer.concat([CLIENT_PREFACE, frame(FRAME_TYPES.SETTINGS, 0, 0, Buffer.alloc(0))]),
      ...frames.map((f) => f.bytes),
      frame(FRAME_TYPES.PING, 0, 0, END_PING),
    ]);
  });
}

/** Sends a marker request and waits until the upstream saw it; returns what it saw since `from`. */
async function settle(session: ClientHttp2Session, from: number, marker: string): Promise<IncomingMessage[]> {
  expect(await get(session, `/__marker/${marker}`), 'the marker request').toBe(200);
  await pollUntil('the marker to reach the upstream', async () =>
    upstream.seen.some((r) => r.url === `/__marker/${marker}`) ? true : undefined,
  );
  return upstream.seen.slice(from).filter((r) => !r.url?.startsWith('/__marker/'));
}

async function fdCount(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length;
}

describe.each(Object.keys(TARGETS))('HTTP/2 bad-input corpus on the %s listener', (name) => {
  const target = TARGETS[name] as Target;
  let fdsBefore = 0;
  let good: ClientHttp2Session;
  beforeAll(async () => {
    good = goodSession(target);
    expect(await get(good, '/ok')).toBe(200);
    fdsBefore = await fdCount(target.process().pid);
  });
  afterAll(() => {
    good?.close();
  });

  const here = cases.filter((c) => c.listeners === undefined || c.listeners.includes(name));
  it.each(here.map((c) => [c.name, c, cases.indexOf(c)] as const))('%s', async (_, c, i) => {
    const from = upstream.seen.length;
    const parseErrors = upstreamParseErrors;
    const flood = encodeFrames(c.frames).length > FLOOD_FRAMES;
    // a well-behaved client on the same listener while a flood runs
    let stop = false;
    const goodStatuses: (number | string)[] = [];
    const goodRun = flood
      ? (async () => {
          while (!stop) goodStatuses.push(await get(good, '/good').catch((e: unknown) => String(e)));
        })()
      : Promise.resolve();
    const outcome = await exchange(target, c.frames).finally(() => {
      stop = true;
    });
    await goodRun;
    expect(c.expect, `${c.name} (${c.rfc ?? ''}): got ${outcome}`).toContain(outcome);
    if (flood) {
      expect(goodStatuses.length).toBeGreaterThan(0);
      expect(
        goodStatuses.filter((st) => st !== 200),
        'the well-behaved client',
      ).toEqual([]);
    }
    const seen = await settle(good, from, `${name}-${i}`);
    expect(upstreamParseErrors - parseErrors, 'malformed bytes reached the upstream').toBe(0);
    const requests = seen.filter((r) => r.url !== '/good');
    if (c.reaches === true) {
      expect(requests).toHaveLength(1);
    } else if (c.partialBody === true) {
      for (const r of requests) expect(r.complete, 'a malformed body reached the upstream whole').toBe(false);
    } else if (!(outcome === 200 && c.expect.includes(200))) {
      expect(
        requests.map((r) => r.url),
        'a refused request reached the upstream',
      ).toEqual([]);
    }
    for (const h of c.upstreamAbsent ?? []) {
      for (const r of requests) expect(r.headers[h], `${h} reached the upstream`).toBeUndefined();
    }
  });

  it('still serves, and holds no more file descriptors than before', async () => {
    expect(
      await exchange(target, [
        { type: 'HEADERS', flags: ['END_HEADERS', 'END_STREAM'], headers: ['@request'] },
      ]),
    ).toBe(200);
    await pollUntil('file descriptors to return to their level before the corpus', async () =>
      (await fdCount(target.process().pid)) <= fdsBefore + 2 ? true : undefined,
    );
  });
});
