/**
 * Request mirroring (sidecar/proxy/http/mirror.ts) against a scriptable fake pool, on fake timers
 * and a seeded random source: what a copy carries, the chosen share, the body copied beside the
 * primary consumer without disturbing it (data, async-iterator and undici-style pause/resume
 * readers), the 64 KiB limit, failures and timeouts counted and never thrown; and the checks of
 * `Route.mirrors` in the route compiler and the config consistency check.
 */
import { PassThrough, Readable } from 'node:stream';
import type { Dispatcher, Pool } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ProxyConfig } from '../../../sidecar/proxy/config/model.ts';
import { checkConsistency } from '../../../sidecar/proxy/config/validate.ts';
import {
  MAX_MIRROR_BODY_BYTES,
  type MirrorSource,
  mirrorRequest,
  shadowHost,
} from '../../../sidecar/proxy/http/mirror.ts';
import { compileRouteTable } from '../../../sidecar/proxy/router/compile.ts';
import type { CompiledMirror } from '../../../sidecar/proxy/router/types.ts';
import { type MirrorEvent, mirrorChannel } from '../../../sidecar/proxy/telemetry/channels.ts';
import { TICK_MS } from '../../../sidecar/proxy/timers.ts';
import type {
  AttemptOutcome,
  UpstreamCluster,
  UpstreamEndpoint,
} from '../../../sidecar/proxy/upstream/types.ts';
import { rng } from '../translate/helpers.ts';

/** One dispatched copy: its options and the handler the test drives. */
interface Sent {
  readonly opts: Dispatcher.DispatchOptions;
  readonly handler: Dispatcher.DispatchHandler;
  readonly aborted: () => Error | undefined;
}

/** A mirror cluster with one endpoint whose pool records dispatches; `throws` makes dispatch throw. */
function fakeCluster(
  name: string,
  opts: { overflow?: boolean; noEndpoint?: boolean; throws?: boolean } = {},
) {
  const sent: Sent[] = [];
  const recorded: AttemptOutcome[] = [];
  let admitted = 0;
  const pool = {
    dispatch(o: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
      if (opts.throws) throw Object.assign(new Error('boom'), { code: 'ECONNREFUSED' });
      let abortedWith: Error | undefined;
      sent.push({ opts: o, handler, aborted: () => abortedWith });
      const controller = {
        abort: (err: Error) => {
          abortedWith = err;
        },
      } as unknown as Dispatcher.DispatchController;
      handler.onRequestStart?.(controller, {});
      return true;
    },
  };
  const endpoint: UpstreamEndpoint = {
    key: '127.0.0.1:9',
    origin: 'http://127.0.0.1:9',
    pool: pool as unknown as Pool,
    labels: {},
    weight: 1,
    activeRequests: 0,
  };
  const cluster: UpstreamCluster = {
    name,
    hashHeader: undefined,
    pick: () => (opts.noEndpoint ? undefined : endpoint),
    admitRequest: () => {
      if (opts.overflow) return 'OVERFLOW';
      admitted++;
      return undefined;
    },
    releaseRequest: () => {
      admitted--;
    },
    admitRetry: () => true,
    releaseRetry: () => undefined,
    record: (_e, outcome) => void recorded.push(outcome),
  };
  return { cluster, endpoint, sent, recorded, admitted: () => admitted };
}

const clustersOf = (...cs: UpstreamCluster[]) => new Map(cs.map((c) => [c.name, c]));
const mirror = (cluster: string, percent = 100): CompiledMirror => ({ cluster, percent });
const always = (): number => 0;

/** Plays one complete response on a sent copy. */
function answer(s: Sent, status = 200): void {
  const c = {} as Dispatcher.DispatchController;
  s.handler.onResponseStart?.(c, status, {}, 'OK');
  s.handler.onResponseData?.(c, Buffer.from('discarded'));
  s.handler.onResponseEnd?.(c, {});
}

const events: MirrorEvent[] = [];
const onMirror = (m: unknown): void => void events.push(m as MirrorEvent);

function source(over: Partial<MirrorSource> = {}): MirrorSource {
  return {
    method: 'GET',
    path: '/items?q=1',
    headers: { host: 'api:8080', 'x-request-id': 'r1' },
    body: undefined,
    ...over,
  };
}

/** Flushes pending stream callbacks (nextTick and setImmediate work under fake timers too). */
async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

beforeAll(() => {
  vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'setTimeout', 'clearTimeout', 'Date'] });
  mirrorChannel.subscribe(onMirror);
});
afterAll(() => {
  mirrorChannel.unsubscribe(onMirror);
  vi.advanceTimersByTime(TICK_MS * 2);
  vi.useRealTimers();
});
afterEach(() => {
  events.length = 0;
});

describe('shadowHost', () => {
  it.each([
    ['api', 'api-shadow'],
    ['api:8080', 'api-shadow:8080'],
    ['reviews.default.svc.cluster.local', 'reviews.default.svc.cluster.local-shadow'],
    ['10.0.0.1:80', '10.0.0.1-shadow:80'],
    ['[::1]:8080', '[::1]-shadow:8080'],
    ['[::1]', '[::1]-shadow'],
  ])('%s → %s', (host, shadow) => {
    expect(shadowHost(host)).toBe(shadow);
  });
});

describe('mirrorRequest', () => {
  it('sends a copy with the method, path and headers, host suffixed -shadow; the caller’s headers stay', () => {
    const f = fakeCluster('shadow');
    const src = source();
    mirrorRequest(src, [mirror('shadow')], clustersOf(f.cluster), always, 0);
    expect(f.sent).toHaveLength(1);
    const o = f.sent[0]!.opts;
    expect(o).toMatchObject({ origin: 'http://127.0.0.1:9', method: 'GET', path: '/items?q=1', body: null });
    expect(o.headers).toEqual({ host: 'api-shadow:8080', 'x-request-id': 'r1' });
    expect(src.headers.host).toBe('api:8080');
    expect(f.endpoint.activeRequests).toBe(1);
    expect(f.admitted()).toBe(1);
  });

  it('discards the response, releases the cluster, records the outcome and counts ok', () => {
    const f = fakeCluster('shadow');
    mirrorRequest(source(), [mirror('shadow')], clustersOf(f.cluster), always, 0);
    answer(f.sent[0]!, 503);
    expect(events).toEqual([{ cluster: 'shadow', result: 'ok' }]);
    expect(f.recorded).toEqual([{ kind: 'response', status: 503 }]);
    expect(f.endpoint.activeRequests).toBe(0);
    expect(f.admitted()).toBe(0);
  });

  it('counts an upstream error as error and records its kind', () => {
    const f = fakeCluster('shadow');
    mirrorRequest(source(), [mirror('shadow')], clustersOf(f.cluster), always, 0);
    f.sent[0]!.handler.onResponseError?.(
      {} as Dispatcher.DispatchController,
      Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }),
    );
    expect(events).toEqual([{ cluster: 'shadow', result: 'error' }]);
    expect(f.recorded).toEqual([{ kind: 'error', error: 'UPSTREAM_CONNECT_FAILURE' }]);
  });

  it('never throws into the caller when dispatch throws', () => {
    const f = fakeCluster('shadow', { throws: true });
    expect(() => mirrorRequest(source(), [mirror('shadow')], clustersOf(f.cluster), always, 0)).not.toThrow();
    expect(events).toEqual([{ cluster: 'shadow', result: 'error' }]);
    expect(f.endpoint.activeRequests).toBe(0);
  });

  it('aborts a hanging mirror at its timeout (the route request timeout, else 10 s)', () => {
    const f = fakeCluster('shadow');
    mirrorRequest(source(), [mirror('shadow')], clustersOf(f.cluster), always, 300);
    vi.advanceTimersByTime(250);
    expect(f.sent[0]!.aborted()).toBeUndefined();
    vi.advanceTimersByTime(TICK_MS + 50);
    expect(f.sent[0]!.aborted()?.message).toBe('mirror timeout');
    f.sent[0]!.handler.onResponseError?.({} as Dispatcher.DispatchController, f.sent[0]!.aborted()!);
    expect(events).toEqual([{ cluster: 'shadow', result: 'error' }]);
    expect(f.recorded).toEqual([{ kind: 'error', error: 'UPSTREAM_TIMEOUT' }]);

    const g = fakeCluster('slow');
    mirrorRequest(source(), [mirror('slow')], clustersOf(g.cluster), always, 0);
    vi.advanceTimersByTime(9_900);
    expect(g.sent[0]!.aborted()).toBeUndefined();
    vi.advanceTimersByTime(200);
    expect(g.sent[0]!.aborted()).toBeDefined();
  });

  it('counts no_endpoint and overflow without sending', () => {
    const none = fakeCluster('none', { noEndpoint: true });
    const full = fakeCluster('full', { overflow: true });
    mirrorRequest(
      source(),
      [mirror('none'), mirror('full'), mirror('missing')],
      clustersOf(none.cluster, full.cluster),
      always,
      0,
    );
    expect(events).toEqual([
      { cluster: 'none', result: 'no_endpoint' },
      { cluster: 'full', result: 'overflow' },
      { cluster: 'missing', result: 'no_endpoint' },
    ]);
    expect(full.sent).toHaveLength(0);
  });

  it('mirrors the configured share of requests (seeded random), 0 % never and 100 % always', () => {
    const f = fakeCluster('a');
    const random = rng(3);
    for (let i = 0; i < 2000; i++)
      mirrorRequest(source(), [mirror('a', 30)], clustersOf(f.cluster), random, 0);
    expect(f.sent.length).toBeGreaterThan(520);
    expect(f.sent.length).toBeLessThan(680);

    const g = fakeCluster('b');
    for (let i = 0; i < 100; i++) {
      mirrorRequest(source(), [mirror('b', 0)], clustersOf(g.cluster), random, 0);
    }
    expect(g.sent).toHaveLength(0);
    for (let i = 0; i < 100; i++) {
      mirrorRequest(source(), [mirror('b', 100)], clustersOf(g.cluster), random, 0);
    }
    expect(g.sent).toHaveLength(100);
  });
});

describe('mirrored bodies', () => {
  const chunks = ['first ', 'second ', 'third'];

  /** A request-like body that yields `parts` one at a time, like a socket. */
  function bodyOf(parts: readonly string[]): PassThrough {
    const body = new PassThrough();
    let i = 0;
    const next = (): void => {
      if (i < parts.length) {
        body.write(Buffer.from(parts[i++]!));
        setImmediate(next);
      } else body.end();
    };
    setImmediate(next);
    return body;
  }

  it('copies the body as a data consumer reads it; the consumer still gets every byte', async () => {
    const f = fakeCluster('shadow');
    const body = bodyOf(chunks);
    mirrorRequest(source({ method: 'POST', body }), [mirror('shadow')], clustersOf(f.cluster), always, 0);
    expect(body.readableFlowing).toBeNull(); // the mirror did not start the flow
    expect(f.sent).toHaveLength(0); // sent once the body is whole
    await flush();
    const got: Buffer[] = [];
    body.on('data', (c: Buffer) => got.push(c));
    await new Promise((resolve) => body.once('end', resolve));
    expect(Buffer.concat(got).toString()).toBe('first second third');
    expect(f.sent).toHaveLength(1);
    expect((f.sent[0]!.opts.body as Buffer).toString()).toBe('first second third');
    expect(f.sent[0]!.opts.method).toBe('POST');
  });

  it('copies the body beside an async-iterator consumer', async () => {
    const f = fakeCluster('shadow');
    const body = bodyOf(chunks);
    mirrorRequest(source({ method: 'PUT', body }), [mirror('shadow')], clustersOf(f.cluster), always, 0);
    let text = '';
    for await (const c of body) text += String(c);
    await flush();
    expect(text).toBe('first second third');
    expect((f.sent[0]!.opts.body as Buffer).toString()).toBe('first second third');
  });

  it('copies the body beside an undici-style reader that pauses and resumes', async () => {
    const f = fakeCluster('shadow');
    const body = bodyOf(chunks);
    mirrorRequest(source({ method: 'POST', body }), [mirror('shadow')], clustersOf(f.cluster), always, 0);
    const got: string[] = [];
    body.on('data', (c: Buffer) => {
      got.push(String(c));
      body.pause();
      setImmediate(() => body.resume());
    });
    body.resume();
    await new Promise((resolve) => body.once('end', resolve));
    await flush();
    expect(got.join('')).toBe('first second third');
    expect((f.sent[0]!.opts.body as Buffer).toString()).toBe('first second third');
  });

  it('skips a declared body over 64 KiB without touching the stream', () => {
    const f = fakeCluster('shadow');
    const body = new PassThrough();
    const headers = { host: 'api', 'content-length': String(MAX_MIRROR_BODY_BYTES + 1) };
    mirrorRequest(
      source({ method: 'POST', headers, body }),
      [mirror('shadow')],
      clustersOf(f.cluster),
      always,
      0,
    );
    expect(events).toEqual([{ cluster: 'shadow', result: 'body_too_large' }]);
    expect(body.listenerCount('newListener')).toBe(0);
    expect(f.sent).toHaveLength(0);
  });

  it('stops copying a streamed body once it outgrows 64 KiB; the consumer is unaffected', async () => {
    const f = fakeCluster('shadow');
    const big = Array.from({ length: 5 }, () => 'x'.repeat(16 * 1024));
    const body = bodyOf(big);
    mirrorRequest(source({ method: 'POST', body }), [mirror('shadow')], clustersOf(f.cluster), always, 0);
    let size = 0;
    body.on('data', (c: Buffer) => {
      size += c.length;
    });
    await new Promise((resolve) => body.once('end', resolve));
    expect(size).toBe(80 * 1024);
    expect(events).toEqual([{ cluster: 'shadow', result: 'body_too_large' }]);
    expect(body.listenerCount('data')).toBe(1);
    expect(f.sent).toHaveLength(0);
  });

  it('counts body_incomplete when the body never arrives whole or was read already', async () => {
    const f = fakeCluster('shadow');
    const cut = new PassThrough();
    mirrorRequest(
      source({ method: 'POST', body: cut }),
      [mirror('shadow')],
      clustersOf(f.cluster),
      always,
      0,
    );
    cut.on('data', () => undefined);
    cut.write('partial');
    cut.destroy();
    await flush();
    expect(events).toEqual([{ cluster: 'shadow', result: 'body_incomplete' }]);

    events.length = 0;
    const read = Readable.from([Buffer.from('a'), Buffer.from('b')]);
    read.read();
    mirrorRequest(
      source({ method: 'POST', body: read }),
      [mirror('shadow')],
      clustersOf(f.cluster),
      always,
      0,
    );
    expect(events).toEqual([{ cluster: 'shadow', result: 'body_incomplete' }]);
    expect(f.sent).toHaveLength(0);
  });

  it('counts body_incomplete when the server dumps an unread body (every data listener removed)', async () => {
    const f = fakeCluster('shadow');
    const body = bodyOf(chunks);
    mirrorRequest(source({ method: 'POST', body }), [mirror('shadow')], clustersOf(f.cluster), always, 0);
    body.on('data', () => undefined);
    body.removeAllListeners('data'); // what IncomingMessage._dump does
    body.resume();
    await new Promise((resolve) => body.once('end', resolve));
    await flush();
    expect(events).toEqual([{ cluster: 'shadow', result: 'body_incomplete' }]);
    expect(f.sent).toHaveLength(0);
  });
});

describe('Route.mirrors configuration', () => {
  const table = (mirrors: unknown) =>
    compileRouteTable({
      name: 'r',
      virtualHosts: [
        {
          name: 'v',
          routes: [{ name: 'm', route: { clusters: [{ name: 'c' }] }, mirrors: mirrors as CompiledMirror[] }],
        },
      ],
    }).match({ host: 'x', path: '/', query: '', method: 'GET', headers: {} });

  it('defaults percent to 100 and keeps an explicit 0', () => {
    expect(
      table([{ cluster: 'a' }, { cluster: 'b', percent: 0 }, { cluster: 'c', percent: 12.5 }])?.mirrors,
    ).toEqual([
      { cluster: 'a', percent: 100 },
      { cluster: 'b', percent: 0 },
      { cluster: 'c', percent: 12.5 },
    ]);
    expect(table(undefined)?.mirrors).toEqual([]);
  });

  it.each([
    [[{ cluster: '' }], 'mirrors[0].cluster: cluster name is required'],
    [
      [{ cluster: 'a' }, { cluster: 'b', percent: 150 }],
      'mirrors[1].percent: must be a number in [0, 100], got 150',
    ],
  ])('rejects %j', (mirrors, message) => {
    expect(() => table(mirrors)).toThrow(`route config "r": virtual host "v", route "m": ${message}`);
  });

  it('is inconsistent when a mirror names a cluster that does not exist', () => {
    const config: ProxyConfig = {
      listeners: [{ name: 'l', port: 0, direction: 'OUTBOUND', routeConfigName: 'r' }],
      routes: [
        {
          name: 'r',
          virtualHosts: [
            {
              name: 'v',
              routes: [
                {
                  name: 'm',
                  route: { clusters: [{ name: 'c' }] },
                  mirrors: [{ cluster: 'c' }, { cluster: 'gone' }],
                },
              ],
            },
          ],
        },
      ],
      clusters: [{ name: 'c' }],
      endpoints: [{ clusterName: 'c', endpoints: [] }],
    };
    expect(checkConsistency(config)).toEqual([
      'RouteConfiguration r: virtualHosts[v].routes[m]: mirrors[1].cluster: no Cluster named "gone"',
    ]);
  });
});
