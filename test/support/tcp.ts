/**
 * Test helpers for opaque TCP: an echo server on loopback and a client that sends, half-closes and
 * collects everything the other side sends until it closes. Real sockets only; every server is
 * closed by its `close()`.
 */
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';

export interface EchoServer {
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Bytes received by the server so far. */
  readonly receivedBytes: number;
  close(): Promise<void>;
}

/**
 * An echo server on 127.0.0.1 (port 0 unless given). `mode`: `stream` echoes each chunk at once
 * and ends after the client's FIN; `after-end` holds everything until the client's FIN, then
 * writes it all back and ends (the reply flows only after the client half-closed).
 */
export async function startEchoServer(
  mode: 'stream' | 'after-end' = 'stream',
  port = 0,
): Promise<EchoServer> {
  const sockets = new Set<Socket>();
  const state = { accepted: 0, receivedBytes: 0 };
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    state.accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const held: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => {
      state.receivedBytes += chunk.length;
      if (mode === 'stream') socket.write(chunk);
      else held.push(chunk);
    });
    socket.on('end', () => {
      if (mode === 'after-end') socket.write(Buffer.concat(held));
      socket.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    get accepted() {
      return state.accepted;
    },
    get receivedBytes() {
      return state.receivedBytes;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface TcpExchange {
  /** Everything received until the connection closed. */
  readonly data: Buffer;
  /** True when the peer half-closed cleanly (FIN), false when the connection was reset/destroyed. */
  readonly ended: boolean;
  /** ms from connect to close. */
  readonly elapsedMs: number;
}

/**
 * Connects to 127.0.0.1:`port`, writes `payload` (if any), half-closes when `end` (default true),
 * and resolves once the connection closed, with what was received.
 */
export function tcpExchange(
  port: number,
  payload: Buffer | undefined,
  options: { end?: boolean; timeoutMs?: number } = {},
): Promise<TcpExchange> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let ended = false;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close from 127.0.0.1:${port} within ${options.timeoutMs ?? 10_000} ms`));
    }, options.timeoutMs ?? 10_000);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => {
      ended = true;
      socket.end();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), ended, elapsedMs: Date.now() - started });
    });
    socket.on('connect', () => {
      if (payload !== undefined) socket.write(payload);
      if (options.end !== false) socket.end();
    });
  });
}

/** `n` bytes of a repeating, position-dependent pattern (so reordering or loss shows). */
export function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 8)) & 0xff;
  return b;
}
