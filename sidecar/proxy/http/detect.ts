/**
 * HTTP version detection on a plain-text downstream connection: HTTP/2 with prior knowledge starts
 * with the 24-byte client connection preface `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n` (RFC 9113 §3.4);
 * anything else is HTTP/1.1. The bytes read are put back (`unshift`) before the connection is handed
 * on, so the chosen server parses the stream from its first byte.
 *
 * Decides as soon as the bytes seen so far differ from the preface (an HTTP/1.1 request line differs
 * at its first byte, except `PRI` and `P…` methods, which differ within 4 bytes) or match all 24.
 * A connection that sends nothing within `timeoutMs`, or fails, is destroyed.
 */
import type { Socket } from 'node:net';

/** RFC 9113 §3.4 client connection preface. */
export const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/**
 * Reads the first bytes of `socket` and calls `serve(socket, isHttp2)` once with them put back.
 * `timeoutMs`: how long to wait for enough bytes to decide (ms).
 */
export function detectHttpVersion(
  socket: Socket,
  timeoutMs: number,
  serve: (socket: Socket, http2: boolean) => void,
): void {
  let seen: Buffer | undefined;
  const giveUp = (): void => {
    cleanup();
    socket.destroy();
  };
  const onData = (chunk: Buffer): void => {
    const data = seen === undefined ? chunk : Buffer.concat([seen, chunk]);
    const n = Math.min(data.length, HTTP2_PREFACE.length);
    const prefix = data.compare(HTTP2_PREFACE, 0, n, 0, n) === 0;
    if (prefix && n < HTTP2_PREFACE.length) {
      seen = data; // a prefix of the preface so far: wait for more
      return;
    }
    cleanup();
    socket.pause();
    socket.unshift(data);
    serve(socket, prefix);
    process.nextTick(() => socket.resume());
  };
  const cleanup = (): void => {
    socket.setTimeout(0);
    socket.off('data', onData);
    socket.off('timeout', giveUp);
    socket.off('error', giveUp);
    socket.off('end', giveUp);
  };
  socket.setTimeout(timeoutMs);
  socket.on('timeout', giveUp);
  socket.on('error', giveUp);
  socket.on('end', giveUp);
  socket.on('data', onData);
}
