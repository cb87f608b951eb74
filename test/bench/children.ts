/**
 * Child-process bookkeeping for the benchmark harness.
 *
 * Every process the harness starts (upstream, proxies, wrk, the open-loop generator) goes through
 * `startChild`, which records its pid, keeps the last few KiB of its output (for failure reasons)
 * and forgets it when it exits. `stopChild` ends one child by its pid (SIGTERM, then SIGKILL after
 * a grace period); `installCleanup` makes sure every child still alive is killed, again by its own
 * pid, when the harness exits, is interrupted (SIGINT/SIGTERM) or fails.
 */
import { type ChildProcess, spawn } from 'node:child_process';

const OUTPUT_TAIL_BYTES = 8 * 1024;

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface Started {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Last few KiB of stdout and stderr, interleaved as received. */
  output(): string;
  /** Set once the process has exited. */
  exitInfo(): ExitInfo | undefined;
  /** Resolves when the process exits (never rejects). */
  readonly exited: Promise<ExitInfo>;
}

export interface StartOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Open an IPC channel (the child is a Node script that uses `process.send`). */
  readonly ipc?: boolean;
  /** Copy the child's output to ours as well as keeping the tail. */
  readonly echo?: boolean;
}

const live = new Map<number, Started>();
const exitHooks: Array<() => void> = [];

/** Spawns `command args`, registers it for cleanup, and waits until it has a pid (or fails to spawn). */
export async function startChild(
  name: string,
  command: string,
  args: readonly string[],
  options: StartOptions = {},
): Promise<Started> {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: options.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', (err) => reject(new Error(`${name}: cannot start ${command}: ${err.message}`)));
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name}: spawned without a pid`);

  let tail = '';
  const keep = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_BYTES);
    if (options.echo) process.stderr.write(chunk);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);

  let info: ExitInfo | undefined;
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => {
      info = { code, signal };
      live.delete(pid);
      resolve(info);
    });
  });
  const started: Started = {
    name,
    pid,
    child,
    output: () => tail,
    exitInfo: () => info,
    exited,
  };
  live.set(pid, started);
  return started;
}

/** Describes how a child ended, with the last line of its output, for "unavailable: <reason>". */
export function describeExit(started: Started): string {
  const info = started.exitInfo();
  const how =
    info === undefined ? 'is running' : info.signal ? `killed by ${info.signal}` : `exited ${info.code}`;
  // Prefer the first line that names an error (a stack trace's last lines are only frames).
  const lines = started
    .output()
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
  const detail = lines.find((line) => /error/i.test(line)) ?? lastLines(started.output(), 2);
  return detail ? `${started.name} ${how}: ${detail.slice(0, 300)}` : `${started.name} ${how}`;
}

export function lastLines(text: string, count: number): string {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .slice(-count)
    .join(' | ');
}

/** Stops one child by its pid: SIGTERM, then SIGKILL if it is still alive after `graceMs`. */
export async function stopChild(started: Started, graceMs = 3000): Promise<void> {
  if (started.exitInfo() !== undefined) return;
  signal(started.pid, 'SIGTERM');
  const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), graceMs).unref());
  if ((await Promise.race([started.exited, timer])) === 'timeout') {
    signal(started.pid, 'SIGKILL');
    await started.exited;
  }
}

/** Runs `hook` once at exit, after the children are killed (e.g. removing the temp dir). */
export function onCleanup(hook: () => void): void {
  exitHooks.push(hook);
}

/** Kills every child still alive, synchronously (usable from an 'exit' handler). */
export function killAllNow(): void {
  for (const started of [...live.values()]) signal(started.pid, 'SIGKILL');
  live.clear();
  for (const hook of exitHooks.splice(0)) {
    try {
      hook();
    } catch {
      // best effort during shutdown
    }
  }
}

/** Installs exit/SIGINT/SIGTERM/uncaught-error handlers that kill our children. */
export function installCleanup(): void {
  process.on('exit', killAllNow);
  for (const [sig, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}, stopping ${live.size} child process(es)\n`);
      killAllNow();
      process.exit(code);
    });
  }
  process.on('uncaughtException', (err) => {
    process.stderr.write(`bench: ${err.stack ?? String(err)}\n`);
    killAllNow();
    process.exit(1);
  });
  process.on('unhandledRejection', (reason) => {
    process.stderr.write(
      `bench: unhandled rejection: ${reason instanceof Error ? reason.stack : String(reason)}\n`,
    );
    killAllNow();
    process.exit(1);
  });
}

/** Waits for the next IPC message from `started` that `accept` recognises, or fails on exit/timeout. */
export function nextMessage<T>(
  started: Started,
  accept: (message: unknown) => message is T,
  timeoutMs: number,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onMessage = (message: unknown): void => {
      if (!accept(message)) return;
      done();
      resolve(message);
    };
    const onExit = (): void => {
      done();
      reject(new Error(describeExit(started)));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`${started.name}: no message within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      started.child.off('message', onMessage);
      started.child.off('exit', onExit);
    };
    started.child.on('message', onMessage);
    started.child.once('exit', onExit);
    if (started.exitInfo() !== undefined) onExit();
  });
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}
