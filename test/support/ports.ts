/**
 * Ports for tests that must tell a process its port up front (sidecar listeners advertised to
 * peers, etcd's client and peer URLs, …).
 *
 * Taking a port from `listen(0)` and releasing it is racy: the kernel hands the same port to the
 * next `bind(0)` or outgoing connection (a sidecar's admin listener on port 0 once got the very
 * port the test had just picked for its outbound listener). So these ports come from below the
 * kernel's ephemeral range (Linux `net.ipv4.ip_local_port_range`, 32768–60999 by default), where
 * the kernel never allocates on its own, and each vitest worker takes its own slice of that range
 * (by `VITEST_POOL_ID`) so that files running in parallel never pick the same number. Each
 * candidate is still checked by listening on it once, so a port something else holds is skipped.
 */
import { createServer } from 'node:net';

const RANGE_START = 20_000;
const RANGE_END = 32_000; // exclusive, below the ephemeral range
const SLICES = 16;
const SLICE_SIZE = Math.floor((RANGE_END - RANGE_START) / SLICES);

const slice = (Number(process.env.VITEST_POOL_ID ?? process.pid) || 0) % SLICES;
const sliceStart = RANGE_START + slice * SLICE_SIZE;
/** Next offset inside this worker's slice; starts at random so reruns do not reuse ports at once. */
let cursor = Math.floor(Math.random() * SLICE_SIZE);

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
      server.close(() => resolve(true));
    });
  });
}

/**
 * `n` distinct ports on 127.0.0.1 that were free when checked, from this worker's slice below the
 * ephemeral range. Throws if the slice has fewer than `n` free ports.
 */
export async function freePorts(n: number): Promise<number[]> {
  const ports: number[] = [];
  for (let tried = 0; ports.length < n && tried < SLICE_SIZE; tried++) {
    const port = sliceStart + (cursor % SLICE_SIZE);
    cursor++;
    if (await canListen(port)) ports.push(port);
  }
  if (ports.length < n) {
    throw new Error(`only ${ports.length} of ${n} free ports in ${sliceStart}+${SLICE_SIZE}`);
  }
  return ports;
}

/** One port, as {@link freePorts}. */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port as number;
}
