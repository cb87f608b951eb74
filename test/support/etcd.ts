/**
 * Test harness: runs a real single-member etcd (`/usr/bin/etcd`, Debian package `etcd-server`)
 * on free loopback ports with a temp data dir, waits until `/health` answers true, and stops it
 * by the pid it started (SIGTERM, then SIGKILL after a grace), removing the temp dir.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from './ports.ts';

export interface RunningEtcd {
  /** Client URLs, e.g. `['http://127.0.0.1:40123']`. */
  readonly endpoints: string[];
  readonly pid: number;
  /** SIGTERM, SIGKILL after `graceMs` (default 3000); resolves once the process is gone and its dir removed. */
  stop(graceMs?: number): Promise<void>;
}

const ETCD_BIN = process.env.ETCD_BIN ?? 'etcd';

/**
 * Starts etcd; resolves once it reports healthy. Retries with new ports when one was taken
 * between choosing and binding. Rejects after `timeoutMs` (default 15 000) or when etcd exits.
 */
export async function startEtcd(options: { timeoutMs?: number } = {}): Promise<RunningEtcd> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(options.timeoutMs ?? 15_000);
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

async function startOnce(timeoutMs: number): Promise<RunningEtcd> {
  const dir = await mkdtemp(join(tmpdir(), 'weft-etcd-'));
  const [clientPort, peerPort] = await freePorts(2);
  const clientUrl = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const child = spawn(
    ETCD_BIN,
    [
      '--name',
      'default',
      '--data-dir',
      join(dir, 'data'),
      '--listen-client-urls',
      clientUrl,
      '--advertise-client-urls',
      clientUrl,
      '--listen-peer-urls',
      peerUrl,
      '--initial-advertise-peer-urls',
      peerUrl,
      '--initial-cluster',
      `default=${peerUrl}`,
      '--logger',
      'zap',
      '--log-level',
      'error',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const output: string[] = [];
  child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const spawnFailed = new Promise<never>((_, reject) => child.once('error', reject));
  const stop = async (graceMs = 3000): Promise<void> => {
    await kill(child, exited, graceMs);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await Promise.race([
      waitHealthy(clientUrl, timeoutMs),
      spawnFailed,
      exited.then(() => {
        throw new Error(`etcd exited before it was healthy:\n${output.join('')}`);
      }),
    ]);
  } catch (error) {
    await stop(0);
    throw error;
  }
  return { endpoints: [clientUrl], pid: child.pid as number, stop };
}

async function kill(child: ChildProcess, exited: Promise<void>, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Polls `GET /health` until it reports `"health":"true"`; throws after `timeoutMs`. */
async function waitHealthy(clientUrl: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
      last = await res.text();
      if (res.ok && (JSON.parse(last) as { health?: string }).health === 'true') return;
    } catch (error) {
      last = (error as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`etcd at ${clientUrl} not healthy within ${timeoutMs} ms (last: ${last})`);
}

/** One member of a `startEtcdCluster` cluster. */
export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly pid: number;
  readonly running: boolean;
  /** SIGKILL by pid; resolves once the process is gone (its data dir stays for a restart). */
  kill(): Promise<void>;
}

export interface RunningEtcdCluster {
  /** Every member's client URL, for `--etcd`. */
  readonly endpoints: string[];
  readonly members: readonly EtcdMember[];
  /** The current leader (asked of the running members' `/v3/maintenance/status`). */
  leader(): Promise<EtcdMember>;
  /** Stops every member by pid and removes the data dirs. */
  stop(): Promise<void>;
}

/**
 * Starts an etcd cluster of `size` members on loopback (static bootstrap, free ports, one temp
 * dir); resolves once every member reports healthy. Members are killed by their pids only.
 */
export async function startEtcdCluster(
  size = 3,
  options: { timeoutMs?: number } = {},
): Promise<RunningEtcdCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'weft-etcd-cluster-'));
  const ports = await freePorts(size * 2);
  const names = Array.from({ length: size }, (_, i) => `m${i}`);
  const peer = (i: number): string => `http://127.0.0.1:${ports[size + i]}`;
  const client = (i: number): string => `http://127.0.0.1:${ports[i]}`;
  const initialCluster = names.map((n, i) => `${n}=${peer(i)}`).join(',');
  const procs = names.map((name, i) => {
    const child = spawn(
      ETCD_BIN,
      [
        '--name',
        name,
        '--data-dir',
        join(dir, name),
        '--listen-client-urls',
        client(i),
        '--advertise-client-urls',
        client(i),
        '--listen-peer-urls',
        peer(i),
        '--initial-advertise-peer-urls',
        peer(i),
        '--initial-cluster',
        initialCluster,
        '--initial-cluster-state',
        'new',
        '--initial-cluster-token',
        `weft-${process.pid}`,
        '--heartbeat-interval',
        '100',
        '--election-timeout',
        '1000',
        '--logger',
        'zap',
        '--log-level',
        'error',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const output: string[] = [];
    child.stderr?.on('data', (c: Buffer) => output.push(c.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let gone = false;
    void exited.then(() => {
      gone = true;
    });
    const member: EtcdMember & { child: ChildProcess; exited: Promise<void>; output: string[] } = {
      name,
      clientUrl: client(i),
      pid: child.pid as number,
      child,
      exited,
      output,
      get running() {
        return !gone;
      },
      async kill() {
        if (gone) return;
        child.kill('SIGKILL');
        await exited;
      },
    };
    return member;
  });
  const stop = async (): Promise<void> => {
    await Promise.all(procs.map((p) => kill(p.child, p.exited, 3000)));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await Promise.all(procs.map((p) => waitHealthy(p.clientUrl, options.timeoutMs ?? 30_000)));
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    endpoints: procs.map((p) => p.clientUrl),
    members: procs,
    async leader() {
      for (const p of procs) {
        if (!p.running) continue;
        try {
          const res = await fetch(`${p.clientUrl}/v3/maintenance/status`, {
            method: 'POST',
            body: '{}',
            signal: AbortSignal.timeout(1000),
          });
          const status = (await res.json()) as { header?: { member_id?: string }; leader?: string };
          if (status.leader === undefined || status.leader === '0') continue;
          const members = (await (
            await fetch(`${p.clientUrl}/v3/cluster/member/list`, { method: 'POST', body: '{}' })
          ).json()) as { members: { ID: string; name: string }[] };
          const name = members.members.find((m) => m.ID === status.leader)?.name;
          const leader = procs.find((q) => q.name === name);
          if (leader !== undefined) return leader;
        } catch {
          // ask the next member
        }
      }
      throw new Error('no etcd member knows a leader');
    },
    stop,
  };
}
