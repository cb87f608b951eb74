/**
 * Test harness: a real `redis-server` (Debian package) on a free loopback port, without
 * persistence (`--save '' --appendonly no`), stopped by the pid it started.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { freePort } from './mesh.ts';

export interface RunningRedis {
  readonly pid: number;
  readonly port: number;
  readonly url: string;
  /** SIGKILL (a crash, as far as clients can tell); resolves once the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM; resolves once the process is gone. */
  stop(): Promise<void>;
}

/** Starts redis-server; resolves once it accepts connections (rejects on exit or after `timeoutMs`). */
export async function startRedis(options: { timeoutMs?: number } = {}): Promise<RunningRedis> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--loglevel',
      'notice',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const output: string[] = [];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`redis-server not ready in time:\n${output.join('')}`)),
      options.timeoutMs ?? 10_000,
    );
    const onData = (chunk: Buffer) => {
      output.push(chunk.toString());
      if (output.join('').includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited:\n${output.join('')}`));
    });
  });
  const stopWith = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return {
    pid: child.pid as number,
    port,
    url: `redis://127.0.0.1:${port}`,
    kill: () => stopWith('SIGKILL'),
    stop: () => stopWith('SIGTERM'),
  };
}
