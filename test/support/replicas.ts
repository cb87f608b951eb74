/**
 * Test harness for control-plane replica tests: real `weft control-plane` and `weft sidecar`
 * processes started through bin/weft, a `weft(args)` runner for the admin verbs, a free-port
 * helper and a polling helper.
 *
 * - Readiness comes from the processes' JSON log lines (`control plane ready`, `sidecar ready`);
 *   ports the process picks itself (port 0) are read from the lines that announce them.
 * - Every process is stopped by the pid this harness started: `stop()` sends SIGTERM, then SIGKILL
 *   after a grace period, waits for the exit and removes the process's temp dir; `kill(signal)`
 *   sends one signal (a crash: SIGKILL) and resolves once the process has exited.
 * - Nothing here sleeps to synchronise: waits poll with a deadline (`until`) or follow log lines.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const WEFT_BIN = fileURLToPath(new URL('../../bin/weft', import.meta.url));

import { freePort } from './ports.ts';

export { freePort };

/**
 * Polls `fn` every `intervalMs` (default 50) until it returns something other than undefined or
 * false, and resolves with it; throws after `timeoutMs` (default 10 000), naming `what`.
 */
export async function until<T>(
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  what: string,
  timeoutMs = 10_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const detail = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface WeftResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `bin/weft args` to completion (stdin: `input` or empty). */
export function weft(
  args: readonly string[],
  options: { input?: string; cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<WeftResult> {
  const { WEFT_TOKEN: _t, WEFT_SERVER: _s, FORCE_COLOR: _f, ...env } = process.env;
  return new Promise((resolve, reject) => {
    const child = spawn(WEFT_BIN, args, {
      cwd: options.cwd ?? tmpdir(),
      env: options.env ?? { ...env, NO_COLOR: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

/** A JSON log line of a weft process (pino). */
type LogEntry = Record<string, unknown> & { readonly msg?: string };

/** One long-running process started by this harness. */
export interface Process {
  readonly pid: number;
  readonly child: ChildProcess;
  /** Every stdout/stderr line so far. */
  readonly output: readonly string[];
  /** Resolves once the process has exited (with its code, or the signal name). */
  readonly exited: Promise<number | string | null>;
  /** Sends `signal` to the pid started; resolves once the process has exited. */
  kill(signal: NodeJS.Signals): Promise<void>;
  /** SIGTERM, SIGKILL after `graceMs` (default 5000); resolves once exited and its temp dir removed. */
  stop(graceMs?: number): Promise<void>;
}

interface Started extends Process {
  /** Resolves with the first log line (past or future) matching `test`; rejects on exit or timeout. */
  line(test: (entry: LogEntry) => boolean, what: string, timeoutMs: number): Promise<LogEntry>;
}

function startProcess(args: readonly string[], dir: string): Started {
  const child = spawn(WEFT_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const entries: LogEntry[] = [];
  const waiters = new Set<() => void>();
  const exited = new Promise<number | string | null>((resolve) =>
    child.once('exit', (code, signal) => {
      resolve(code ?? signal);
      for (const w of waiters) w();
    }),
  );
  child.once('error', (err) => output.push(`spawn error: ${err.message}`));
  let buffered = '';
  const onData = (chunk: Buffer): void => {
    buffered += chunk.toString();
    for (let nl = buffered.indexOf('\n'); nl !== -1; nl = buffered.indexOf('\n')) {
      const text = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      output.push(text);
      try {
        entries.push(JSON.parse(text) as LogEntry);
      } catch {
        // not a JSON line; kept in output
      }
    }
    for (const w of waiters) w();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const running = (): boolean => child.exitCode === null && child.signalCode === null;

  const kill = async (signal: NodeJS.Signals): Promise<void> => {
    if (running()) child.kill(signal);
    await exited;
  };
  let stopping: Promise<void> | undefined;
  const stop = (graceMs = 5000): Promise<void> => {
    stopping ??= (async () => {
      if (running()) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    })();
    return stopping;
  };
  const line = (test: (e: LogEntry) => boolean, what: string, timeoutMs: number): Promise<LogEntry> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const found = entries.find(test);
        if (found !== undefined) done(() => resolve(found));
        else if (!running())
          done(() => reject(new Error(`${what}: the process exited\n${output.join('\n')}`)));
      };
      const timer = setTimeout(
        () => done(() => reject(new Error(`${what}: not within ${timeoutMs} ms\n${output.join('\n')}`))),
        timeoutMs,
      );
      const done = (settle: () => void): void => {
        clearTimeout(timer);
        waiters.delete(check);
        settle();
      };
      waiters.add(check);
      check();
    });
  return { pid: child.pid as number, child, output, exited, kill, stop, line };
}

/** Starts `args` and waits for `ready`; on failure stops the process (and removes `dir`) and rethrows. */
async function startAndWait<T>(
  args: readonly string[],
  dir: string,
  ready: (p: Started) => Promise<T>,
): Promise<{ process: Started; value: T }> {
  const p = startProcess(args, dir);
  try {
    return { process: p, value: await ready(p) };
  } catch (err) {
    await p.stop(0);
    throw err;
  }
}

const portOf = (e: LogEntry): number => Number(e.port);

export interface RunningControlPlane extends Process {
  readonly replicaId: string;
  readonly dataDir: string;
  /** Discovery (gRPC) address, `127.0.0.1:<port>`. */
  readonly discoveryAddress: string;
  /** Admin API URL, `http://127.0.0.1:<port>`. */
  readonly adminUrl: string;
  /** Monitoring URL (`/ready`, `/metrics`, `/config_dump`). */
  readonly monitoringUrl: string;
  /** This replica's admin token (each replica has its own data dir, hence its own token). */
  readonly token: string;
  /** `bin/weft args --server <admin url> --token <token>`, with `input` on stdin. */
  weft(args: readonly string[], input?: string): Promise<WeftResult>;
}

/**
 * Starts `weft control-plane` with its own temp data dir on the given etcd (or the embedded
 * store when `etcd` is empty), every port picked by the process; resolves once it logged
 * `control plane ready`.
 */
export async function startControlPlane(options: {
  readonly etcd: readonly string[];
  readonly replicaId: string;
  readonly timeoutMs?: number;
  readonly logLevel?: string;
}): Promise<RunningControlPlane> {
  const dataDir = await mkdtemp(join(tmpdir(), `weft-cp-${options.replicaId}-`));
  const timeoutMs = options.timeoutMs ?? 20_000;
  const args = [
    'control-plane',
    '--no-tls',
    '--data-dir',
    dataDir,
    ...(options.etcd.length > 0 ? ['--etcd', options.etcd.join(',')] : []),
    '--grpc-port',
    '0',
    '--admin-port',
    '0',
    '--monitoring-port',
    '0',
    '--replica-id',
    options.replicaId,
    '--log-level',
    options.logLevel ?? 'info',
  ];
  const { process: p, value } = await startAndWait(args, dataDir, async (p) => {
    const what = `control plane ${options.replicaId}`;
    await p.line((e) => e.msg === 'control plane ready', what, timeoutMs);
    const discovery = await p.line((e) => e.msg === 'discovery ready', what, 0);
    const admin = await p.line((e) => e.msg === 'admin api ready', what, 0);
    const monitoring = await p.line((e) => e.msg === 'monitoring ready', what, 0);
    const token = (await readFile(join(dataDir, 'admin-token'), 'utf8')).trim();
    return { discovery: portOf(discovery), admin: portOf(admin), monitoring: portOf(monitoring), token };
  });
  const adminUrl = `http://127.0.0.1:${value.admin}`;
  return {
    pid: p.pid,
    child: p.child,
    output: p.output,
    exited: p.exited,
    kill: p.kill,
    stop: p.stop,
    replicaId: options.replicaId,
    dataDir,
    discoveryAddress: `127.0.0.1:${value.discovery}`,
    adminUrl,
    monitoringUrl: `http://127.0.0.1:${value.monitoring}`,
    token: value.token,
    weft: (args, input) =>
      weft([...args, '--server', adminUrl, '--token', value.token], input === undefined ? {} : { input }),
  };
}

export interface RunningSidecar extends Process {
  readonly proxyId: string;
  readonly service: string;
  readonly adminPort: number;
  readonly outboundPort: number;
  readonly inboundPort: number;
  /** `GET /config_dump` of its admin listener. */
  configDump(): Promise<{ version: string } & Record<string, unknown>>;
}

/**
 * Starts `weft sidecar` fed by the control plane at `controlPlane` (one address or several),
 * with free outbound/inbound ports, its own temp data dir, `--drain-delay 0` and the proxy id
 * `<workload>.default`; resolves once it logged `sidecar ready` (its first config applied).
 */
export async function startDynamicSidecar(options: {
  readonly controlPlane: string | readonly string[];
  readonly service: string;
  readonly workload: string;
  readonly appPort: number;
  readonly labels?: string;
  readonly timeoutMs?: number;
}): Promise<RunningSidecar> {
  const dataDir = await mkdtemp(join(tmpdir(), `weft-sidecar-${options.workload}-`));
  const [outboundPort, inboundPort] = [await freePort(), await freePort()];
  const proxyId = `${options.workload}.default`;
  const controlPlane =
    typeof options.controlPlane === 'string' ? options.controlPlane : options.controlPlane.join(',');
  const args = [
    'sidecar',
    '--control-plane',
    controlPlane,
    '--service',
    options.service,
    '--workload',
    options.workload,
    '--labels',
    options.labels ?? 'version=v1',
    '--app-port',
    String(options.appPort),
    '--outbound-port',
    String(outboundPort),
    '--inbound-port',
    String(inboundPort),
    '--admin-port',
    '0',
    '--data-dir',
    dataDir,
    '--proxy-id',
    proxyId,
    '--drain-delay',
    '0',
  ];
  const { process: p, value: adminPort } = await startAndWait(args, dataDir, async (p) => {
    const what = `sidecar ${options.workload}`;
    await p.line((e) => e.msg === 'sidecar ready', what, options.timeoutMs ?? 20_000);
    return portOf(await p.line((e) => e.msg === 'admin ready', what, 0));
  });
  return {
    pid: p.pid,
    child: p.child,
    output: p.output,
    exited: p.exited,
    kill: p.kill,
    stop: p.stop,
    proxyId,
    service: options.service,
    adminPort,
    outboundPort,
    inboundPort,
    async configDump() {
      const res = await fetch(`http://127.0.0.1:${adminPort}/config_dump`, {
        signal: AbortSignal.timeout(2000),
      });
      if (!res.ok) throw new Error(`config_dump of ${proxyId}: HTTP ${res.status}`);
      return (await res.json()) as { version: string } & Record<string, unknown>;
    },
  };
}
