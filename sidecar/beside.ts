/**
 * `weft run`: a sidecar beside a plain process, outside Kubernetes. The supervisor
 *
 * 1. starts `weft sidecar --control-plane ...` (dynamic mode) as a child process, its JSON log on
 *    our stderr (so the app's stdout stays the app's);
 * 2. waits until the sidecar logs `sidecar ready` (its first config is applied; it has its
 *    certificate when mTLS is on); a sidecar that exits first ends `weft run` with exit 1;
 * 3. starts the app (`COMMAND ARGS...`, stdio inherited) with `HTTP_PROXY`/`http_proxy` set to
 *    the outbound listener, `NO_PROXY`/`no_proxy` for loopback, and `NODE_USE_ENV_PROXY=1` (Node's
 *    `fetch` and `http` honour the proxy variables with it), plus `WEFT_SERVICE`; the join token
 *    (`WEFT_JOIN_TOKEN`) is not passed on;
 * 4. forwards SIGTERM, SIGINT and SIGHUP to the app;
 * 5. when the app exits, stops the sidecar with SIGTERM (it deregisters its endpoint, keeps
 *    serving its drain delay, then drains: sidecar/run.ts) and waits for it;
 * 6. exits with the app's exit code (128 + the signal number when the app died of a signal).
 *
 * If the sidecar dies while the app runs, the app gets SIGTERM and `weft run` exits 1 once it
 * has stopped (the process is no longer in the mesh; a supervisor such as systemd restarts both).
 *
 * Invariants: every child is signalled by the pid we spawned; nothing is left running when
 * `weft run` exits (the sidecar gets SIGKILL if it has not stopped 30 s after SIGTERM).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { constants } from 'node:os';

export interface BesideOptions {
  /** `weft sidecar` flags (without the verb): `--control-plane`, `--service`, `--app-port`, ... */
  readonly sidecarArgs: readonly string[];
  /** The sidecar's outbound listener port (for `HTTP_PROXY`). */
  readonly outboundPort: number;
  readonly service: string;
  /** The app: command and arguments. */
  readonly command: readonly string[];
  /** Give up when the sidecar is not ready after this long (ms, default 60 000). */
  readonly readyTimeoutMs?: number;
  /** The weft CLI entry (default: the running one, `process.argv[1]`). */
  readonly weftEntry?: string;
}

const FORWARDED: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];
const SIDECAR_STOP_GRACE_MS = 30_000;

/** Exit code for a child's `exit` event: its code, or 128 + signal number (shell convention). */
export function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const n = signal === null ? undefined : constants.signals[signal];
  return n === undefined ? 1 : 128 + n;
}

function say(message: string): void {
  process.stderr.write(`weft run: ${message}\n`);
}

/** Runs the app beside a sidecar (see the module comment); resolves with the exit code to use. */
export async function runBeside(options: BesideOptions): Promise<number> {
  const entry = options.weftEntry ?? (process.argv[1] as string);
  const sidecar = spawn(process.execPath, [...process.execArgv, entry, 'sidecar', ...options.sidecarArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: process.env,
  });
  const sidecarExit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    sidecar.once('exit', (code, signal) => resolve({ code, signal }));
  });
  sidecar.stderr?.pipe(process.stderr);
  const ready = waitForReady(sidecar, options.readyTimeoutMs ?? 60_000);

  // Signals before the app starts stop the sidecar and end the run.
  let app: ChildProcess | undefined;
  let stopRequested: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (app !== undefined) {
      app.kill(signal);
    } else {
      stopRequested = signal;
      sidecar.kill('SIGTERM');
    }
  };
  for (const s of FORWARDED) process.on(s, onSignal);
  try {
    const outcome = await Promise.race([ready, sidecarExit.then(() => 'exited' as const)]);
    if (outcome !== 'ready') {
      if (stopRequested !== undefined) {
        await sidecarExit;
        return exitCodeOf(null, stopRequested);
      }
      say(outcome === 'exited' ? 'the sidecar exited before it was ready' : outcome);
      await stopSidecar(sidecar, sidecarExit);
      return 1;
    }

    const proxyUrl = `http://127.0.0.1:${options.outboundPort}`;
    const noProxy = 'localhost,127.0.0.1,::1';
    const [file, ...args] = options.command;
    const { WEFT_JOIN_TOKEN: _token, ...env } = process.env;
    app = spawn(file as string, args, {
      stdio: 'inherit',
      env: {
        ...env,
        HTTP_PROXY: proxyUrl,
        http_proxy: proxyUrl,
        NO_PROXY: noProxy,
        no_proxy: noProxy,
        NODE_USE_ENV_PROXY: '1',
        WEFT_SERVICE: options.service,
      },
    });
    const appExit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>(
      (resolve) => {
        app?.once('exit', (code, signal) => resolve({ code, signal }));
        app?.once('error', (error) => resolve({ code: 127, signal: null, error }));
      },
    );
    const first = await Promise.race([appExit, sidecarExit.then(() => 'sidecar' as const)]);
    if (first === 'sidecar') {
      say('the sidecar exited; stopping the app');
      app.kill('SIGTERM');
      await appExit;
      return 1;
    }
    if (first.error !== undefined) say(`cannot start ${String(file)}: ${first.error.message}`);
    await stopSidecar(sidecar, sidecarExit);
    return exitCodeOf(first.code, first.signal);
  } finally {
    for (const s of FORWARDED) process.off(s, onSignal);
  }
}

/** Resolves `'ready'` once the sidecar logs `sidecar ready`, or a reason after `timeoutMs`. */
function waitForReady(sidecar: ChildProcess, timeoutMs: number): Promise<'ready' | string> {
  return new Promise((resolve) => {
    let buffered = '';
    let done = false;
    const timer = setTimeout(() => finish(`the sidecar was not ready within ${timeoutMs} ms`), timeoutMs);
    const finish = (result: 'ready' | string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(result);
    };
    sidecar.stdout?.on('data', (chunk: Buffer) => {
      // The sidecar's log goes to our stderr, line by line.
      process.stderr.write(chunk);
      if (done) return;
      buffered += chunk.toString('utf8');
      let nl = buffered.indexOf('\n');
      while (nl !== -1) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line.includes('"sidecar ready"')) {
          try {
            if ((JSON.parse(line) as { msg?: string }).msg === 'sidecar ready') finish('ready');
          } catch {
            // not a log line
          }
        }
        nl = buffered.indexOf('\n');
      }
    });
  });
}

async function stopSidecar(sidecar: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (sidecar.exitCode !== null || sidecar.signalCode !== null) return;
  sidecar.kill('SIGTERM');
  const timer = setTimeout(() => sidecar.kill('SIGKILL'), SIDECAR_STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}
