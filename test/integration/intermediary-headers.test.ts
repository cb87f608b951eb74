/**
 * The proxy as an HTTP intermediary, header rules (RFC 9110 §7.6, RFC 9112 §9.6, DESIGN.md §4):
 * hop-by-hop fields stripped both ways (including names listed in `Connection`), repeated fields
 * kept separate and in order, X-Forwarded-For per the listener's trusted hops, x-request-id and
 * W3C traceparent/tracestate propagation. Real sidecar process, real node:http upstream, curl.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curl } from '../support/curl.ts';
import { type RunningSidecar, startSidecar } from '../support/sidecar.ts';
import { startUpstream, type Upstream } from '../support/upstream.ts';
import { forwardAllBootstrap } from './intermediary-helpers.ts';

/** What the upstream echoes back: the request exactly as it arrived. */
interface Echo {
  method: string;
  url: string;
  rawHeaders: string[];
  body: string;
}

/** The values of every `name` field the upstream received, in arrival order. */
function received(echo: Echo, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < echo.rawHeaders.length; i += 2) {
    if ((echo.rawHeaders[i] as string).toLowerCase() === name) out.push(echo.rawHeaders[i + 1] as string);
  }
  return out;
}

function receivedNames(echo: Echo): string[] {
  return echo.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
}

/** Response headers the upstream sends on `/hop-by-hop` (names as written on the wire). */
const HOP_BY_HOP_RESPONSE: [string, string][] = [
  ['Connection', 'x-bar'],
  ['Keep-Alive', 'timeout=7, max=99'],
  ['Proxy-Connection', 'keep-alive'],
  ['TE', 'trailers'],
  ['Trailer', 'x-checksum'],
  ['Upgrade', 'h2c'],
  ['Transfer-Encoding', 'gzip, chunked'],
  ['X-Bar', 'listed-in-connection'],
  ['X-Kept', 'end-to-end'],
];

const SET_COOKIES = ['a=1; Path=/', 'b=2; HttpOnly', 'c=3; Expires=Wed, 21 Oct 2026 07:28:00 GMT'];

function handler(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    if (req.url === '/hop-by-hop') {
      res.writeHead(200, HOP_BY_HOP_RESPONSE.flat());
      res.end('body');
      return;
    }
    if (req.url === '/cookies') {
      res.setHeader('set-cookie', SET_COOKIES);
      res.setHeader('x-multi', ['first', 'second']);
      res.setHeader('content-type', 'text/plain');
      res.end('cookies');
      return;
    }
    const echo: Echo = {
      method: req.method ?? '',
      url: req.url ?? '',
      rawHeaders: req.rawHeaders,
      body: Buffer.concat(chunks).toString('latin1'),
    };
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(echo));
  });
}

let upstream: Upstream;
let sidecar: RunningSidecar;
/** Listener with the default xffNumTrustedHops (0). */
let untrusted: string;
/** Listener with xffNumTrustedHops = 1. */
let trusted: string;

beforeAll(async () => {
  upstream = await startUpstream(handler);
  const base = forwardAllBootstrap(upstream.port);
  const outbound = base.listeners?.[0];
  if (outbound === undefined) throw new Error('bootstrap without listener');
  sidecar = await startSidecar({
    ...base,
    listeners: [outbound, { ...outbound, name: 'trusted', xffNumTrustedHops: 1 }],
  });
  untrusted = sidecar.url('outbound');
  trusted = sidecar.url('trusted');
});

afterAll(async () => {
  await sidecar?.stop();
  await upstream?.close();
});

async function echoed(args: string[]): Promise<Echo> {
  const res = await curl(args);
  expect(res.status, res.stderr + res.body).toBe(200);
  return JSON.parse(res.body) as Echo;
}

describe('hop-by-hop fields (RFC 9110 §7.6.1)', () => {
  it('does not forward Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade or a field named in Connection to the upstream', async () => {
    const echo = await echoed([
      '-H',
      'Connection: x-foo, Keep-Alive',
      '-H',
      'Keep-Alive: timeout=300',
      '-H',
      'Proxy-Connection: keep-alive',
      '-H',
      'TE: trailers',
      '-H',
      'Trailer: x-checksum',
      '-H',
      'Upgrade: h2c',
      '-H',
      'X-Foo: listed-in-connection',
      '-H',
      'X-Kept: end-to-end',
      `${untrusted}/request-hop-by-hop`,
    ]);
    const names = receivedNames(echo);
    for (const name of ['keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'x-foo']) {
      expect(names, name).not.toContain(name);
    }
    // The only Connection the upstream sees is the one the proxy's own client adds for its hop.
    expect(received(echo, 'connection').join(',')).not.toMatch(/x-foo/i);
    expect(received(echo, 'x-kept')).toEqual(['end-to-end']);
  });

  it('re-frames a chunked request body instead of forwarding the client Transfer-Encoding', async () => {
    const echo = await echoed([
      '-H',
      'Transfer-Encoding: chunked',
      '--data-binary',
      'chunked request body',
      `${untrusted}/chunked-upload`,
    ]);
    expect(echo.method).toBe('POST');
    expect(echo.body).toBe('chunked request body');
    // The proxy frames its own hop: chunked, or a Content-Length when the whole body had already
    // arrived; exactly one of the two (RFC 9112 §6.1), never the client's field copied alongside.
    const te = received(echo, 'transfer-encoding');
    const cl = received(echo, 'content-length');
    expect(te.length + cl.length).toBe(1);
    if (te.length === 1) expect(te).toEqual(['chunked']);
    else expect(cl).toEqual([String('chunked request body'.length)]);
  });

  it('strips Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade, Transfer-Encoding and Connection-listed fields from the response', async () => {
    // Control: the upstream really sends every one of them.
    const direct = await curl([`http://127.0.0.1:${upstream.port}/hop-by-hop`]);
    expect(direct.header('x-bar')).toBe('listed-in-connection');
    expect(direct.header('transfer-encoding')).toBe('gzip, chunked');
    expect(direct.header('upgrade')).toBe('h2c');

    const res = await curl([`${untrusted}/hop-by-hop`]);
    expect(res.status).toBe(200);
    expect(res.body).toBe('body');
    expect(res.header('x-kept')).toBe('end-to-end');
    for (const name of ['proxy-connection', 'te', 'trailer', 'upgrade', 'x-bar']) {
      expect(res.all(name), name).toEqual([]);
    }
    // What remains is the proxy's own framing and connection management for the client's hop.
    expect(res.all('connection')).toEqual(['keep-alive']);
    expect(res.all('keep-alive')).toEqual(['timeout=60']);
    expect(res.all('transfer-encoding')).toEqual(['chunked']);
  });
});

describe('repeated fields (RFC 9110 §5.3)', () => {
  it('keeps several Set-Cookie response fields as separate lines in order', async () => {
    const res = await curl([`${untrusted}/cookies`]);
    expect(res.status).toBe(200);
    expect(res.all('set-cookie')).toEqual(SET_COOKIES);
    expect(res.all('x-multi')).toEqual(['first', 'second']);
  });

  it('forwards repeated request fields in their original order', async () => {
    const echo = await echoed([
      '-H',
      'X-Multi: one',
      '-H',
      'X-Other: between',
      '-H',
      'X-Multi: two',
      '-H',
      'X-Multi: three',
      `${untrusted}/repeated`,
    ]);
    expect(received(echo, 'x-multi')).toEqual(['one', 'two', 'three']);
    expect(received(echo, 'x-other')).toEqual(['between']);
  });
});

describe('X-Forwarded-For', () => {
  it('replaces a client-supplied X-Forwarded-For with the peer address when no hop is trusted (default)', async () => {
    const echo = await echoed(['-H', 'X-Forwarded-For: 203.0.113.7', `${untrusted}/xff`]);
    expect(received(echo, 'x-forwarded-for')).toEqual(['127.0.0.1']);
  });

  it('sets X-Forwarded-For to the peer address when the client sent none', async () => {
    const echo = await echoed([`${untrusted}/xff`]);
    expect(received(echo, 'x-forwarded-for')).toEqual(['127.0.0.1']);
  });

  it('appends the peer address to X-Forwarded-For when xffNumTrustedHops >= 1', async () => {
    const echo = await echoed(['-H', 'X-Forwarded-For: 203.0.113.7, 198.51.100.2', `${trusted}/xff`]);
    expect(received(echo, 'x-forwarded-for')).toEqual(['203.0.113.7, 198.51.100.2, 127.0.0.1']);
  });

  it('joins several incoming X-Forwarded-For lines into one list before appending', async () => {
    const echo = await echoed([
      '-H',
      'X-Forwarded-For: 203.0.113.7',
      '-H',
      'X-Forwarded-For: 198.51.100.2',
      `${trusted}/xff`,
    ]);
    expect(received(echo, 'x-forwarded-for')).toEqual(['203.0.113.7, 198.51.100.2, 127.0.0.1']);
  });
});

describe('x-request-id', () => {
  const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

  it('generates a fresh UUID v4 x-request-id when the request has none', async () => {
    const first = received(await echoed([`${untrusted}/rid`]), 'x-request-id');
    const second = received(await echoed([`${untrusted}/rid`]), 'x-request-id');
    expect(first).toHaveLength(1);
    expect(first[0]).toMatch(UUID_V4);
    expect(second[0]).toMatch(UUID_V4);
    expect(second[0]).not.toBe(first[0]);
  });

  it('keeps the x-request-id the client sent', async () => {
    const echo = await echoed(['-H', 'X-Request-Id: client-chosen-id-42', `${untrusted}/rid`]);
    expect(received(echo, 'x-request-id')).toEqual(['client-chosen-id-42']);
  });
});

describe('W3C trace context', () => {
  const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
  const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
  const PARENT_ID = '00f067aa0ba902b7';

  function forwardedTraceparent(echo: Echo): RegExpExecArray {
    const values = received(echo, 'traceparent');
    expect(values).toHaveLength(1);
    const m = TRACEPARENT.exec(values[0] as string);
    expect(m, values[0]).not.toBeNull();
    expect(m?.[1]).not.toBe('0'.repeat(32));
    expect(m?.[2]).not.toBe('0'.repeat(16));
    return m as RegExpExecArray;
  }

  it('keeps the trace-id and flags of a valid traceparent and replaces the parent-id with its own span', async () => {
    const echo = await echoed(['-H', `traceparent: 00-${TRACE_ID}-${PARENT_ID}-01`, `${untrusted}/trace`]);
    const m = forwardedTraceparent(echo);
    expect(m[1]).toBe(TRACE_ID);
    expect(m[2]).not.toBe(PARENT_ID);
    expect(m[3]).toBe('01');
  });

  it('starts a new trace when the request has no traceparent', async () => {
    const a = forwardedTraceparent(await echoed([`${untrusted}/trace`]));
    const b = forwardedTraceparent(await echoed([`${untrusted}/trace`]));
    expect(a[1]).not.toBe(b[1]);
  });

  it.each([
    ['an all-zero trace-id', `00-${'0'.repeat(32)}-${PARENT_ID}-01`],
    ['an all-zero parent-id', `00-${TRACE_ID}-${'0'.repeat(16)}-01`],
    ['version ff', `ff-${TRACE_ID}-${PARENT_ID}-01`],
    ['upper-case hex', `00-${TRACE_ID.toUpperCase()}-${PARENT_ID}-01`],
    ['a truncated trace-id', `00-${TRACE_ID.slice(2)}-${PARENT_ID}-01`],
    ['garbage', 'not-a-traceparent'],
  ])('starts a new trace when the incoming traceparent has %s', async (_, incoming) => {
    const m = forwardedTraceparent(await echoed(['-H', `traceparent: ${incoming}`, `${untrusted}/trace`]));
    expect(m[1]).not.toBe(TRACE_ID);
    expect(m[1]).not.toBe(TRACE_ID.slice(2));
  });

  it('forwards tracestate unchanged', async () => {
    const tracestate = 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7';
    const echo = await echoed([
      '-H',
      `traceparent: 00-${TRACE_ID}-${PARENT_ID}-01`,
      '-H',
      `tracestate: ${tracestate}`,
      `${untrusted}/trace`,
    ]);
    expect(received(echo, 'tracestate')).toEqual([tracestate]);
    expect(forwardedTraceparent(echo)[1]).toBe(TRACE_ID);
  });
});
