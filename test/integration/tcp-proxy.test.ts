/**
 * TCP proxy listeners on a static bootstrap (`Listener.tcpProxy`, no control plane): a real
 * `weft sidecar --config` process in front of real echo servers on loopback. Half-close, idle
 * timeout, connect failure and the `weft_tcp_*` metrics. The mesh case (two sidecars, mTLS, the
 * control plane, Redis) is in tcp-mesh.test.ts.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, pollUntil } from '../support/mesh.ts';
import { type RunningSidecar, startSidecar } from '../support/sidecar.ts';
import { type EchoServer, pattern, startEchoServer, tcpExchange } from '../support/tcp.ts';

const IDLE_MS = 300;

/** The sum of a metric's samples whose labels include every `labels` pair (Prometheus text). */
function sample(metrics: string, name: string, labels: Readonly<Record<string, string>>): number {
  let total = 0;
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

describe('TCP proxy listener (static bootstrap)', () => {
  let afterEnd: EchoServer;
  let stream: EchoServer;
  let sidecar: RunningSidecar;
  const metrics = async (): Promise<string> =>
    (await fetch(`http://127.0.0.1:${sidecar.adminPort}/metrics`)).text();

  beforeAll(async () => {
    afterEnd = await startEchoServer('after-end');
    stream = await startEchoServer('stream');
    const closedPort = await freePort();
    const tcp = (name: string, cluster: string, idleTimeoutMs?: number, maxConnections?: number) => ({
      name,
      address: '127.0.0.1',
      port: 0,
      direction: 'OUTBOUND' as const,
      routeConfigName: '',
      tcpProxy: {
        cluster,
        ...(idleTimeoutMs !== undefined && { idleTimeoutMs }),
        ...(maxConnections !== undefined && { maxConnections }),
      },
    });
    const endpoint = (cluster: string, port: number) => ({
      clusterName: cluster,
      endpoints: [{ address: '127.0.0.1', port }],
    });
    sidecar = await startSidecar({
      node: { id: 'tcp-1', service: 'client', namespace: 'default', workload: 'client-v1' },
      admin: { address: '127.0.0.1', port: 0 },
      listeners: [
        tcp('after-end', 'after-end'),
        tcp('idle', 'stream', IDLE_MS),
        tcp('down', 'down'),
        tcp('one', 'stream', undefined, 1),
      ],
      routes: [],
      clusters: [{ name: 'after-end' }, { name: 'stream' }, { name: 'down' }],
      endpoints: [
        endpoint('after-end', afterEnd.port),
        endpoint('stream', stream.port),
        endpoint('down', closedPort),
      ],
    });
  });

  afterAll(async () => {
    await sidecar?.stop();
    await afterEnd?.close();
    await stream?.close();
  });

  it('keeps the reply flowing after the client half-closes (FIN propagated, 1 MiB both ways)', async () => {
    const payload = pattern(1024 * 1024);
    const got = await tcpExchange(sidecar.ports['after-end'] as number, payload);
    expect(got.ended).toBe(true);
    expect(got.data.length).toBe(payload.length);
    expect(got.data.equals(payload)).toBe(true);
    const text = await pollUntil('the byte counters of the connection', async () => {
      const m = await metrics();
      const labels = { reporter: 'source', destination_service: 'after-end', response_flags: '-' };
      return sample(m, 'weft_tcp_connections_closed_total', labels) >= 1 ? m : undefined;
    });
    const labels = { reporter: 'source', destination_service: 'after-end' };
    expect(sample(text, 'weft_tcp_connections_opened_total', labels)).toBe(1);
    expect(sample(text, 'weft_tcp_received_bytes_total', labels)).toBe(payload.length);
    expect(sample(text, 'weft_tcp_sent_bytes_total', labels)).toBe(payload.length);
    expect(sample(text, 'weft_tcp_received_bytes_total', { connection_security_policy: 'none' })).toBe(
      payload.length,
    );
  });

  it('closes both sides after the idle timeout', async () => {
    const before = stream.accepted;
    const got = await tcpExchange(sidecar.ports.idle as number, Buffer.from('ping'), { end: false });
    expect(got.data.toString()).toBe('ping');
    expect(got.elapsedMs).toBeGreaterThanOrEqual(IDLE_MS - 50);
    expect(got.elapsedMs).toBeLessThan(5000);
    expect(stream.accepted).toBe(before + 1);
    await pollUntil('the idle connection to be counted closed', async () =>
      sample(await metrics(), 'weft_tcp_connections_closed_total', { destination_service: 'stream' }) >= 1
        ? true
        : undefined,
    );
  });

  it('closes connections over the listener maxConnections at accept', async () => {
    const port = sidecar.ports.one as number;
    const first = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    first.write('first');
    await new Promise<void>((resolve) => first.once('data', () => resolve()));
    const second = await tcpExchange(port, Buffer.from('second'), { end: false });
    expect(second.data.length).toBe(0);
    first.end();
    await new Promise<void>((resolve) => first.once('close', () => resolve()));
    // Once the proxy saw the first connection close, a new one is accepted again.
    await pollUntil('a connection to be accepted again', async () =>
      (await tcpExchange(port, Buffer.from('third'))).data.toString() === 'third' ? true : undefined,
    );
  });

  it('closes the downstream socket when the upstream refuses the connection', async () => {
    const got = await tcpExchange(sidecar.ports.down as number, Buffer.from('hello'), { end: false });
    expect(got.data.length).toBe(0);
    await pollUntil('the connect failure in the metrics', async () =>
      sample(await metrics(), 'weft_tcp_connections_closed_total', {
        destination_service: 'down',
        response_flags: 'UPSTREAM_CONNECT_FAILURE',
      }) === 1
        ? true
        : undefined,
    );
  });
});
