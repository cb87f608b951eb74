/**
 * HTTP version detection on real loopback sockets: the h2c preface (RFC 9113 §3.4), split over
 * several writes or not, against HTTP/1.1 request lines, and the bytes are handed on intact.
 */
import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { detectHttpVersion, HTTP2_PREFACE } from '../../../sidecar/proxy/http/detect.ts';

let server: Server | undefined;

afterEach(async () => {
  if (server !== undefined) {
    server.close();
    await once(server, 'close');
    server = undefined;
  }
});

/** Sends `parts` (one write each, a tick apart) and resolves with what detection said and the bytes it handed on. */
async function detect(parts: readonly Buffer[]): Promise<{ http2: boolean; bytes: Buffer }> {
  const expected = Buffer.concat(parts).length;
  const result = new Promise<{ http2: boolean; bytes: Buffer }>((resolve) => {
    server = createServer((socket: Socket) => {
      detectHttpVersion(socket, 5000, (s, http2) => {
        const chunks: Buffer[] = [];
        const onData = (c: Buffer): void => {
          chunks.push(c);
          const bytes = Buffer.concat(chunks);
          if (bytes.length >= expected) {
            s.off('data', onData);
            s.destroy();
            resolve({ http2, bytes });
          }
        };
        s.on('data', onData);
      });
    });
  });
  server?.listen(0, '127.0.0.1');
  await once(server as Server, 'listening');
  const client = connect(((server as Server).address() as AddressInfo).port, '127.0.0.1');
  client.on('error', () => {});
  await once(client, 'connect');
  for (const part of parts) {
    client.write(part);
    await new Promise((r) => setTimeout(r, 5));
  }
  const out = await result;
  client.destroy();
  return out;
}

describe('detectHttpVersion', () => {
  it('detects the HTTP/2 preface and hands every byte on', async () => {
    const settings = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
    const r = await detect([Buffer.concat([HTTP2_PREFACE, settings])]);
    expect(r.http2).toBe(true);
    expect(r.bytes.equals(Buffer.concat([HTTP2_PREFACE, settings]))).toBe(true);
  });

  it('waits for a preface split over several writes', async () => {
    const r = await detect([
      HTTP2_PREFACE.subarray(0, 3),
      HTTP2_PREFACE.subarray(3, 10),
      HTTP2_PREFACE.subarray(10),
    ]);
    expect(r.http2).toBe(true);
    expect(r.bytes.equals(HTTP2_PREFACE)).toBe(true);
  });

  it('treats an HTTP/1.1 request as HTTP/1.1, including methods that start like the preface', async () => {
    const get = Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    expect(await detect([get])).toEqual({ http2: false, bytes: get });
    const put = Buffer.from('PUT /x HTTP/1.1\r\nHost: a\r\n\r\n');
    expect((await detect([put])).http2).toBe(false);
    const pri = Buffer.from('PRI /x HTTP/1.1\r\nHost: a\r\n\r\n');
    expect((await detect([pri.subarray(0, 2), pri.subarray(2)])).http2).toBe(false);
  });
});
