/**
 * The proxy as an HTTP intermediary, message bodies and connection life (RFC 9110 §9.3.2,
 * §10.1.1, §15.3.5, §15.4.5; RFC 9112 §6.3, §9.3): responses without content (HEAD, 204, 304)
 * leave the downstream connection usable, `Expect: 100-continue` is answered at once, and a
 * client that goes away cancels the upstream request. Real sidecar process, real node:http
 * upstream, curl as the client.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curl } from '../support/curl.ts';
import { type RunningSidecar, startSidecar } from '../support/sidecar.ts';
import { startUpstream, type Upstream } from '../support/upstream.ts';
import {
  forwardAllBootstrap,
  MiB,
  runCurl,
  TRANSFER_LINE,
  transfers,
  within,
} from './intermediary-helpers.ts';

const AFTER_BODY = 'after-body';

/** An upstream request the test holds open; `closed` resolves with the time its socket closed. */
interface HeldRequest {
  readonly url: string;
  readonly closed: Promise<number>;
}

const held: HeldRequest[] = [];
const heldWaiters: ((h: HeldRequest) => void)[] = [];

/** The next request the upstream holds open (/hang, /hang-mid-body, /slow-upload). */
function nextHeld(): Promise<HeldRequest> {
  const ready = held.shift();
  if (ready !== undefined) return Promise.resolve(ready);
  return new Promise((resolve) => heldWaiters.push(resolve));
}

function hold(req: IncomingMessage): void {
  const closed = new Promise<number>((resolve) => req.socket.once('close', () => resolve(performance.now())));
  const h = { url: req.url ?? '', closed };
  const waiter = heldWaiters.shift();
  if (waiter) waiter(h);
  else held.push(h);
}

function handler(req: IncomingMessage, res: ServerResponse): void {
  switch (req.url) {
    case '/resource':
      // HEAD and GET alike: the representation is 12345 bytes.
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 12345 });
      res.end(req.method === 'HEAD' ? undefined : Buffer.alloc(12345, 0x61));
      return;
    case '/no-content':
      res.writeHead(204, { 'x-done': 'yes' });
      res.end();
      return;
    case '/cached':
      if (req.headers['if-none-match'] === '"v1"') {
        res.writeHead(304, { etag: '"v1"', 'cache-control': 'max-age=60' });
        res.end();
      } else {
        res.writeHead(200, { etag: '"v1"', 'content-length': 4 });
        res.end('full');
      }
      return;
    case '/after':
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': AFTER_BODY.length });
      res.end(AFTER_BODY);
      return;
    case '/upload': {
      const hash = createHash('sha256');
      let bytes = 0;
      req.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        hash.update(chunk);
      });
      req.on('end', () => {
        const names = req.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ bytes, sha256: hash.digest('hex'), names }));
      });
      return;
    }
    case '/hang':
      hold(req); // never answers
      return;
    case '/hang-mid-body':
      hold(req);
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write(Buffer.alloc(1024, 0x62)); // then never ends
      return;
    case '/slow-upload':
      hold(req);
      req.resume(); // reads whatever arrives, never answers
      return;
    default:
      res.writeHead(404);
      res.end();
  }
}

let upstream: Upstream;
let sidecar: RunningSidecar;
let base: string;
let tempDir: string;

beforeAll(async () => {
  tempDir = await mkdtemp(join(tmpdir(), 'weft-bodies-'));
  upstream = await startUpstream(handler);
  sidecar = await startSidecar(forwardAllBootstrap(upstream.port));
  base = sidecar.url('outbound');
});

afterAll(async () => {
  await sidecar?.stop();
  await upstream?.close();
  if (tempDir) await rm(tempDir, { recursive: true, force: true });
});

describe('responses without content keep the connection usable', () => {
  it('answers HEAD without a body but with the upstream Content-Length, then serves a GET on the same connection', async () => {
    const run = await runCurl([
      '-I',
      `${base}/resource`,
      '-w',
      TRANSFER_LINE,
      '--next',
      '-o',
      '/dev/null',
      `${base}/after`,
      '-w',
      TRANSFER_LINE,
    ]);
    expect(run.exitCode, run.stderr).toBe(0);
    const [head, after] = transfers(run.stdout);
    expect(head).toEqual({ status: 200, newConnections: 1, bodyBytes: 0, contentLength: '12345' });
    expect(after).toEqual({
      status: 200,
      newConnections: 0,
      bodyBytes: AFTER_BODY.length,
      contentLength: String(AFTER_BODY.length),
    });
  });

  it('answers 204 without a body, then serves the next request on the same connection', async () => {
    const run = await runCurl([`${base}/no-content`, `${base}/after`, '-w', TRANSFER_LINE]);
    expect(run.exitCode, run.stderr).toBe(0);
    const [noContent, after] = transfers(run.stdout);
    expect(noContent).toMatchObject({ status: 204, newConnections: 1, bodyBytes: 0 });
    expect(after).toMatchObject({ status: 200, newConnections: 0, bodyBytes: AFTER_BODY.length });
    expect(run.stdout).toContain(`\n${AFTER_BODY}\n@@transfer 200`);
  });

  it('answers 304 without a body, then serves the next request on the same connection', async () => {
    const run = await runCurl([
      '-H',
      'If-None-Match: "v1"',
      `${base}/cached`,
      `${base}/after`,
      '-w',
      TRANSFER_LINE,
    ]);
    expect(run.exitCode, run.stderr).toBe(0);
    const [notModified, after] = transfers(run.stdout);
    expect(notModified).toMatchObject({ status: 304, newConnections: 1, bodyBytes: 0 });
    expect(after).toMatchObject({ status: 200, newConnections: 0, bodyBytes: AFTER_BODY.length });
  });

  it('forwards the 304 validators (ETag, Cache-Control)', async () => {
    const res = await curl(['-H', 'If-None-Match: "v1"', `${base}/cached`]);
    expect(res.status).toBe(304);
    expect(res.header('etag')).toBe('"v1"');
    expect(res.header('cache-control')).toBe('max-age=60');
    expect(res.body).toBe('');
  });
});

describe('Expect: 100-continue (RFC 9110 §10.1.1)', () => {
  it('sends 100 Continue at once, forwards the whole 1 MiB body and does not forward Expect', async () => {
    const body = randomBytes(MiB);
    const file = join(tempDir, 'one-mib.bin');
    await writeFile(file, body);
    const run = await runCurl([
      '-i',
      '-H',
      'Expect: 100-continue',
      '--expect100-timeout',
      '10',
      '--data-binary',
      `@${file}`,
      `${base}/upload`,
    ]);
    expect(run.exitCode, run.stderr).toBe(0);
    // A missing 100 would make curl wait the full 10 s before sending the body.
    expect(run.elapsedMs).toBeLessThan(5000);
    expect(run.stdout).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
    const json = JSON.parse(run.stdout.slice(run.stdout.indexOf('\r\n\r\n{') + 4)) as {
      bytes: number;
      sha256: string;
      names: string[];
    };
    expect(json.bytes).toBe(MiB);
    expect(json.sha256).toBe(createHash('sha256').update(body).digest('hex'));
    expect(json.names).not.toContain('expect');
  });
});

describe('client abort propagation (RFC 9110 §7.6)', () => {
  async function expectUpstreamClosedAfterClientGivesUp(
    path: string,
    extraArgs: string[] = [],
  ): Promise<number> {
    const arrived = nextHeld();
    const run = runCurl(['--max-time', '1', ...extraArgs, `${base}${path}`]);
    const request = await within(arrived, 5000, `upstream request for ${path}`);
    expect(request.url).toBe(path);
    const result = await run;
    expect(result.exitCode).toBe(28); // curl: operation timed out
    const closedAt = await within(request.closed, 1000, 'upstream socket close after curl gave up');
    return closedAt - result.exitedAtMs;
  }

  it('closes the upstream request within 1 s when the client gives up before the response head', async ({
    annotate,
  }) => {
    const latencyMs = await expectUpstreamClosedAfterClientGivesUp('/hang');
    expect(latencyMs).toBeLessThan(1000);
    await annotate(`upstream socket closed ${latencyMs.toFixed(1)} ms after curl exited`);
  });

  it('closes the upstream request within 1 s when the client gives up in the middle of the response body', async ({
    annotate,
  }) => {
    const latencyMs = await expectUpstreamClosedAfterClientGivesUp('/hang-mid-body');
    expect(latencyMs).toBeLessThan(1000);
    await annotate(`upstream socket closed ${latencyMs.toFixed(1)} ms after curl exited`);
  });

  it('closes the upstream request within 1 s when the client gives up in the middle of an upload', async ({
    annotate,
  }) => {
    const file = join(tempDir, 'slow-upload.bin');
    await writeFile(file, Buffer.alloc(256 * 1024, 0x63));
    const latencyMs = await expectUpstreamClosedAfterClientGivesUp('/slow-upload', [
      '--limit-rate',
      '32K',
      '--data-binary',
      `@${file}`,
    ]);
    expect(latencyMs).toBeLessThan(1000);
    await annotate(`upstream socket closed ${latencyMs.toFixed(1)} ms after curl exited`);
  });

  it('keeps serving after clients went away', async () => {
    const res = await curl([`${base}/after`]);
    expect(res.status).toBe(200);
    expect(res.body).toBe(AFTER_BODY);
  });
});
