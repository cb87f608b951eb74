/**
 * Processes for the data-plane fault scenarios, each started and stopped by its own pid:
 *
 * - `startUpstreamProcess(mode, port)`: support/upstream-process.ts in a child process.
 * - `startStaticSidecar(bootstrap, stdout)`: `weft sidecar --config` on a bootstrap whose ports
 *   are fixed by the caller (so the sidecar's stdout can be a blocked pipe, /dev/full or a file
 *   that the test never reads), ready once admin `/ready` answers 200.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { stringify } from 'yaml';
import type { Bootstrap } from '../../../sidecar/proxy/config/types.ts';
import { pollUntil, WEFT_BIN } from '../../support/mesh.ts';

const UPSTREAM_SCRIPT = fileURLToPath(new URL('./upstream-process.ts', import.meta.url));

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** A child process with its exit as a promise and its output kept. */
export interface Child {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly output: string[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, SIGKILL after `graceMs`; resolves once gone (safe to call twice). */
  stop(graceMs?: number): Promise<void>;
  /** Sends SIGKILL and resolves once gone. */
  kill(): Promise<void>;
  readonly running: boolean;
}

function track(child: ChildProcess): Child {
  live.add(child);
  const output: string[] = [];
  child.stdout?.on('data', (c: Buffer) => output.push(c.toString()));
  child.stderr?.on('data', (c: Buffer) => output.push(c.toString()));
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      done = true;
      live.delete(child);
      resolve({ code, signal });
    }),
  );
  return {
    child,
    pid: child.pid as number,
    output,
    exited,
    get running() {
      return !done;
    },
    async stop(graceMs = 5000) {
      if (done) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
    async kill() {
      if (done) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}

export interface UpstreamProcess extends Child {
  readonly port: number;
}

export type UpstreamMode = 'ok' | 'slow' | 'stream' | 'hang' | 'closing';

/** Starts the upstream script in `mode` on `port` (0: a free one); resolves once it listens. */
export async function startUpstreamProcess(mode: UpstreamMode, port = 0): Promise<UpstreamProcess> {
  const child = spawn(process.execPath, [UPSTREAM_SCRIPT, mode, String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const proc = track(child);
  const bound = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`upstream ${mode} did not listen:\n${proc.output.join('')}`)),
      10_000,
    );
    child.stdout?.on('data', (c: Buffer) => {
      const m = /listening (\d+)/.exec(c.toString());
      if (m !== null) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    void proc.exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`upstream ${mode} exited:\n${proc.output.join('')}`));
    });
  });
  return Object.assign(proc, { port: bound });
}

export interface StaticSidecar extends Child {
  readonly adminUrl: string;
  readonly dir: string;
  /** The admin `/metrics` text. */
  metrics(): Promise<string>;
}

/**
 * Starts `weft sidecar --config` on `bootstrap` (its admin and listener ports fixed by the
 * caller) with stdout going to `stdout` (a file descriptor, or 'pipe'), and resolves once admin
 * `/ready` answers 200.
 */
export async function startStaticSidecar(
  bootstrap: Bootstrap,
  options: {
    stdout?: number | 'pipe' | 'ignore';
    extraArgs?: readonly string[];
    env?: NodeJS.ProcessEnv;
  } = {},
): Promise<StaticSidecar> {
  const dir = await mkdtemp(join(tmpdir(), 'weft-faults-sidecar-'));
  const file = join(dir, 'bootstrap.yaml');
  await writeFile(file, stringify(bootstrap));
  const adminUrl = `http://127.0.0.1:${bootstrap.admin?.port}`;
  // bin/weft, as users run it (its V8 flags included).
  const child = spawn(
    WEFT_BIN,
    ['sidecar', '--config', file, '--drain-delay', '0', ...(options.extraArgs ?? [])],
    { stdio: ['ignore', options.stdout ?? 'pipe', 'pipe'], env: { ...process.env, ...options.env } },
  );
  const proc = track(child);
  const stopProcess = proc.stop;
  const sidecar: StaticSidecar = Object.assign(proc, {
    adminUrl,
    dir,
    async metrics() {
      const res = await request(`${adminUrl}/metrics`);
      return res.body.text();
    },
    async stop(graceMs = 5000) {
      await stopProcess(graceMs);
      await rm(dir, { recursive: true, force: true });
    },
  });
  try {
    await pollUntil(
      'the sidecar /ready to answer 200',
      async () => {
        if (!proc.running) throw new Error(`sidecar exited:\n${proc.output.join('')}`);
        const res = await request(`${adminUrl}/ready`);
        await res.body.dump();
        return res.statusCode === 200 ? true : undefined;
      },
      { timeoutMs: 20_000 },
    );
  } catch (err) {
    await sidecar.stop(1000);
    throw err;
  }
  return sidecar;
}

/** The sum of a metric's samples (Prometheus text) whose label text contains every `labels` part. */
export function metricSum(text: string, name: string, ...labels: string[]): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!(line.startsWith(`${name}{`) || line.startsWith(`${name} `))) continue;
    if (!labels.every((l) => line.includes(l))) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}
