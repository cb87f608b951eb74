/**
 * `Splice` on real loopback sockets: bytes both ways with counts, half-close in either direction,
 * a reset on one side destroys the other, and the idle timeout.
 */
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Splice, type SpliceResult } from '../../../sidecar/proxy/tcp/splice.ts';

/** A connected socket pair (client side, server side) on 127.0.0.1, both allowHalfOpen. */
async function socketPair(servers: Server[]): Promise<[Socket, Socket]> {
  const server = createServer({ allowHalfOpen: true });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const client = connect({
    host: '127.0.0.1',
    port: (server.address() as AddressInfo).port,
    allowHalfOpen: true,
  });
  await new Promise<void>((resolve) => client.once('connect', resolve));
  return [client, await accepted];
}

function collect(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  return new Promise((resolve) => socket.once('end', () => resolve(Buffer.concat(chunks))));
}

describe('Splice', () => {
  const servers: Server[] = [];
  const ends: Socket[] = [];
  afterEach(() => {
    for (const s of ends.splice(0)) s.destroy();
    for (const s of servers.splice(0)) s.close();
  });

  /** app ⇄ [down | splice | up] ⇄ peer */
  async function chain(idleMs = 0): Promise<{ app: Socket; peer: Socket; ended: Promise<SpliceResult> }> {
    const [app, down] = await socketPair(servers);
    const [up, peer] = await socketPair(servers);
    const ended = new Promise<SpliceResult>((resolve) => new Splice(down, up, idleMs, resolve));
    ends.push(app, peer);
    return { app, peer, ended };
  }

  it('moves bytes both ways, propagates each FIN separately and counts bytes', async () => {
    const { app, peer, ended } = await chain();
    const atPeer = collect(peer);
    const atApp = collect(app);
    app.end('request');
    expect((await atPeer).toString()).toBe('request');
    // The app half-closed; the reply direction still flows.
    peer.end('reply after the FIN');
    expect((await atApp).toString()).toBe('reply after the FIN');
    app.end();
    expect(await ended).toEqual({ reason: 'closed', receivedBytes: 7, sentBytes: 19 });
  });

  it('destroys the other side when one side is reset', async () => {
    const { app, peer, ended } = await chain();
    // The app sees its connection end (its sockets are allowHalfOpen: 'end', not 'close').
    const appEnded = new Promise<void>((resolve) => app.once('end', () => resolve()));
    app.on('error', () => undefined);
    app.resume();
    peer.resetAndDestroy();
    await appEnded;
    expect((await ended).reason).toBe('error');
  });

  it('closes both sides after the idle timeout', async () => {
    const { app, peer, ended } = await chain(100);
    const started = Date.now();
    const closed = Promise.all(
      [app, peer].map((s) => new Promise<void>((resolve) => s.once('end', () => resolve()))),
    );
    app.on('error', () => undefined);
    peer.on('error', () => undefined);
    app.resume();
    peer.resume();
    expect((await ended).reason).toBe('idle_timeout');
    await closed;
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
  });
});
