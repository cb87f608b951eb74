/**
 * Shared pieces of the intermediary integration tests (test/integration/intermediary-*.test.ts):
 * a catch-all bootstrap forwarding everything to one upstream, a curl runner that exposes what
 * the parsed `curl()` harness hides (interim responses, several transfers in one invocation,
 * elapsed time, streamed stdin/stdout), /proc readings of the sidecar, and deadline helpers so
 * that no test synchronises by sleeping.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { Bootstrap, Listener } from '../../sidecar/proxy/config/types.ts';
import { outboundBootstrap } from '../support/sidecar.ts';

/** Outbound listener `outbound`, every host and path routed to cluster `up` at 127.0.0.1:`port`. */
export function forwardAllBootstrap(port: number, listener: Partial<Listener> = {}): Bootstrap {
  return outboundBootstrap({
    virtualHosts: [
      { name: 'all', domains: ['*'], routes: [{ name: 'all', route: { clusters: [{ name: 'up' }] } }] },
    ],
    clusters: [{ name: 'up' }],
    endpoints: [{ clusterName: 'up', endpoints: [{ address: '127.0.0.1', port }] }],
    listener,
  });
}

export interface CurlRun {
  readonly exitCode: number | null;
  /** stdout as latin1 (empty when `onStdout` consumed it). */
  readonly stdout: string;
  readonly stderr: string;
  /** Wall time from spawn to exit (ms). */
  readonly elapsedMs: number;
  /** `performance.now()` when curl exited. */
  readonly exitedAtMs: number;
}

/**
 * Runs `curl -sS <args>` as is (no `-i`, no parsing). `stdin` is piped into curl when given;
 * `onStdout` receives stdout chunks instead of buffering them.
 */
export function runCurl(
  args: readonly string[],
  options: { stdin?: Readable; onStdout?: (chunk: Buffer) => void } = {},
): Promise<CurlRun> {
  const started = performance.now();
  const child = spawn('curl', ['-sS', ...args], {
    stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  if (options.stdin && child.stdin) options.stdin.pipe(child.stdin);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout?.on('data', (chunk: Buffer) => (options.onStdout ? options.onStdout(chunk) : out.push(chunk)));
  child.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      const exitedAtMs = performance.now();
      resolve({
        exitCode: code,
        stdout: Buffer.concat(out).toString('latin1'),
        stderr: Buffer.concat(err).toString('utf8'),
        elapsedMs: exitedAtMs - started,
        exitedAtMs,
      });
    });
  });
}

/** A `-w` format that prints one parseable line per transfer (see `transfers`). */
export const TRANSFER_LINE =
  '\n@@transfer %{http_code} %{num_connects} %{size_download} %header{content-length}\n';

/** One transfer of a multi-URL curl run, from `TRANSFER_LINE`. */
export interface Transfer {
  readonly status: number;
  /** New connections curl opened for this transfer (0 = the previous connection was reused). */
  readonly newConnections: number;
  readonly bodyBytes: number;
  /** The response's Content-Length field ('' when absent). */
  readonly contentLength: string;
}

/** The `TRANSFER_LINE` records of a curl run, in order. */
export function transfers(stdout: string): Transfer[] {
  return [...stdout.matchAll(/^@@transfer (\d+) (\d+) (\d+) ?(\d*)$/gm)].map((m) => ({
    status: Number(m[1]),
    newConnections: Number(m[2]),
    bodyBytes: Number(m[3]),
    contentLength: m[4] ?? '',
  }));
}

/** Resident set size of process `pid` in bytes (VmRSS from /proc/<pid>/status). */
export async function vmRssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kb) * 1024;
}

/** Samples a process's RSS every `intervalMs` until `stop()`, which resolves with the peak (bytes). */
export function sampleRss(pid: number, intervalMs = 25): { stop(): Promise<number> } {
  let peak = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      peak = Math.max(peak, await vmRssBytes(pid));
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return Math.max(peak, await vmRssBytes(pid));
    },
  };
}

/** Rejects with `label` when `promise` has not settled within `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, label: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${label}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` every `intervalMs` until it returns true; rejects after `ms`. */
export async function pollUntil(
  check: () => boolean | Promise<boolean>,
  ms: number,
  label: string,
): Promise<void> {
  const end = performance.now() + ms;
  for (;;) {
    if (await check()) return;
    if (performance.now() > end) throw new Error(`${label}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export const MiB = 1024 * 1024;
