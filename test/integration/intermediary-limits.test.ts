/**
 * Downstream limits of a listener (RFC 9110 §15.5.20 431, §15.5.9 408; RFC 9112 §2-§5 message
 * syntax): oversized header blocks and too many header fields are refused with 431 before
 * anything reaches the upstream, a configured `limits` block tightens the defaults (16 KiB,
 * 100 fields), a header block that is too slow gets 408, and malformed messages written on a raw
 * socket get 400 while the process keeps serving. Every refusal is the proxy's own local reply
 * (`x-weft-error`), so it cannot be mistaken for an upstream's answer.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curl } from '../support/curl.ts';
import { type RunningSidecar, startSidecar } from '../support/sidecar.ts';
import { startUpstream, type Upstream } from '../support/upstream.ts';
import { forwardAllBootstrap, within } from './intermediary-helpers.ts';

let upstream: Upstream;
let sidecar: RunningSidecar;
/** Default limits: 16 KiB of header block, 100 header fields. */
let defaults: string;
/** limits: 4 KiB of header block, 20 fields, 1 s for the header block. */
let strict: string;

beforeAll(async () => {
  upstream = await startUpstream();
  const base = forwardAllBootstrap(upstream.port);
  const outbound = base.listeners?.[0];
  if (outbound === undefined) throw new Error('bootstrap without listener');
  sidecar = await startSidecar({
    ...base,
    listeners: [
      outbound,
      {
        ...outbound,
        name: 'strict',
        limits: { maxRequestHeadersBytes: 4096, maxRequestHeadersCount: 20, requestHeadersTimeoutMs: 1000 },
      },
    ],
  });
  defaults = sidecar.url('outbound');
  strict = sidecar.url('strict');
});

afterAll(async () => {
  await sidecar?.stop();
  await upstream?.close();
});

/** `-H` arguments for `n` distinct header fields. */
function fields(n: number): string[] {
  return Array.from({ length: n }, (_, i) => ['-H', `x-field-${i}: v${i}`]).flat();
}

/** curl itself sends Host, User-Agent and Accept. */
const CURL_OWN_FIELDS = 3;

/** Runs curl and checks the answer is the proxy's own 431, with the upstream never asked. */
async function expectRefused431(args: string[]): Promise<void> {
  const seenBefore = upstream.seen.length;
  const res = await curl(args);
  expect(res.status, res.stderr).toBe(431);
  expect(res.header('x-weft-error')).toBe('REQUEST_HEADERS_TOO_LARGE');
  expect(upstream.seen.length).toBe(seenBefore);
}

describe('header block size (default 16 KiB)', () => {
  it('refuses one 20 KiB header with 431 REQUEST_HEADERS_TOO_LARGE', async () => {
    await expectRefused431(['-H', `x-big: ${'a'.repeat(20 * 1024)}`, `${defaults}/big`]);
  });

  it('forwards one 15 KiB header, under the default', async () => {
    const res = await curl(['-H', `x-big: ${'a'.repeat(15 * 1024)}`, `${defaults}/big`]);
    expect(res.status).toBe(200);
  });

  it('refuses a 5 KiB header with 431 on a listener configured with maxRequestHeadersBytes 4096', async () => {
    await expectRefused431(['-H', `x-big: ${'a'.repeat(5 * 1024)}`, `${strict}/big`]);
    const res = await curl(['-H', `x-big: ${'a'.repeat(5 * 1024)}`, `${defaults}/big`]);
    expect(res.status).toBe(200);
  });
});

describe('header field count (default 100)', () => {
  it('forwards exactly 100 header fields, all of them', async () => {
    const res = await curl([...fields(100 - CURL_OWN_FIELDS), `${defaults}/count`]);
    expect(res.status).toBe(200);
    const { headers } = JSON.parse(res.body) as { headers: Record<string, string> };
    expect(Object.keys(headers).filter((n) => n.startsWith('x-field-'))).toHaveLength(100 - CURL_OWN_FIELDS);
  });

  it('refuses 101 header fields with 431 REQUEST_HEADERS_TOO_LARGE', async () => {
    await expectRefused431([...fields(101 - CURL_OWN_FIELDS), `${defaults}/count`]);
  });

  it('refuses 150 header fields with 431 REQUEST_HEADERS_TOO_LARGE', async () => {
    await expectRefused431([...fields(150 - CURL_OWN_FIELDS), `${defaults}/count`]);
  });

  it('refuses 21 header fields with 431 on a listener configured with maxRequestHeadersCount 20', async () => {
    await expectRefused431([...fields(21 - CURL_OWN_FIELDS), `${strict}/count`]);
    const res = await curl([...fields(20 - CURL_OWN_FIELDS), `${strict}/count`]);
    expect(res.status).toBe(200);
  });
});

/** Writes `data` on a fresh connection; resolves with everything read once the proxy closed it. */
function rawExchange(url: string, data: string): Promise<string> {
  const { port } = new URL(url);
  return within(
    new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1');
      let out = '';
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => {
        out += chunk;
      });
      socket.on('error', reject);
      socket.on('close', () => resolve(out));
      socket.write(data);
    }),
    5000,
    `the proxy closing the connection after ${JSON.stringify(data.slice(0, 40))}`,
  );
}

describe('malformed messages on a raw socket', () => {
  it.each([
    ['garbage instead of a request line', 'GARBAGE\r\n\r\n'],
    ['a request line with junk after the HTTP version', 'GET / HTTP/1.1 junk\r\nHost: a\r\n\r\n'],
    ['an invalid method token', 'G(T / HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['a space inside the request target', 'GET /a b HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['an unknown HTTP version', 'GET / HTTP/7.3\r\nHost: a\r\n\r\n'],
    ['a header line without a colon', 'GET / HTTP/1.1\r\nHost: a\r\nno-colon-here\r\n\r\n'],
    [
      'both Content-Length and Transfer-Encoding (request smuggling)',
      'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    ],
    ['a bare LF line ending', 'GET / HTTP/1.1\nHost: a\n\n'],
  ])('answers %s with 400 BAD_REQUEST and closes the connection', async (_, data) => {
    const seenBefore = upstream.seen.length;
    const response = await rawExchange(defaults, data);
    expect(response).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(response).toMatch(/\r\nx-weft-error: BAD_REQUEST\r\n/i);
    expect(upstream.seen.length).toBe(seenBefore);
  });

  it('answers a request without Host with 400 and closes the connection', async () => {
    const response = await rawExchange(defaults, 'GET / HTTP/1.1\r\n\r\n');
    expect(response).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
  });

  it('keeps serving after malformed messages', async () => {
    const res = await curl([`${defaults}/after-malformed`]);
    expect(res.status).toBe(200);
    expect(sidecar.child.exitCode).toBeNull();
  });
});

describe('header block timeout', () => {
  it('answers 408 DOWNSTREAM_HEADERS_TIMEOUT when the header block does not complete in requestHeadersTimeoutMs', async () => {
    const started = performance.now();
    // The header block never ends; the listener (1 s limit, checked every second) gives up.
    const response = await rawExchange(strict, 'GET /slow HTTP/1.1\r\nHost: a\r\nx-partial: ');
    const elapsedMs = performance.now() - started;
    expect(response).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(response).toMatch(/\r\nx-weft-error: DOWNSTREAM_HEADERS_TIMEOUT\r\n/i);
    expect(elapsedMs).toBeGreaterThanOrEqual(900);
    expect(elapsedMs).toBeLessThan(4000);
  });
});
