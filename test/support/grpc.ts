/**
 * The Python gRPC harness (test/support/grpc/{server,client}.py) driven from tests: real gRPC
 * servers and clients from Debian's python3-grpcio, run by `/usr/bin/python3` (Debian's
 * interpreter; the pyenv `python3` on PATH has no grpc module).
 *
 * Invariants: every process is started here and signalled only by its own pid; a server is ready
 * when it printed its `ready` line (an event, no sleep); a client run is killed by pid after its
 * deadline. Server events (`call`, `cancelled`) are kept in order for assertions.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Debian's interpreter, which has python3-grpcio (scripts/ensure-test-deps.sh installs it). */
export const PYTHON = '/usr/bin/python3';
const SERVER = fileURLToPath(new URL('./grpc/server.py', import.meta.url));
const CLIENT = fileURLToPath(new URL('./grpc/client.py', import.meta.url));

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** One line a server printed: `{event: 'call', method, metadata}` or `{event: 'cancelled', method}`. */
export interface ServerEvent {
  readonly event: 'ready' | 'call' | 'cancelled';
  readonly method?: string;
  readonly metadata?: Readonly<Record<string, string>>;
  readonly port?: number;
}

export interface GrpcServer {
  readonly name: string;
  readonly port: number;
  readonly pid: number;
  /** Everything the server printed, in order. */
  readonly events: ServerEvent[];
  /** Calls received so far (optionally of one method). */
  calls(method?: string): number;
  /** Resolves with the first event (already printed or still to come) matching `pred`; rejects after `timeoutMs`. */
  waitFor(pred: (e: ServerEvent) => boolean, timeoutMs?: number): Promise<ServerEvent>;
  stop(): Promise<void>;
}

/**
 * Starts `server.py --port 0 --name <name> [--fail-with <code>]` and resolves once it is serving
 * (its `ready` line), with the port it bound.
 */
export function startGrpcServer(
  name: string,
  options: { failWith?: string; timeoutMs?: number } = {},
): Promise<GrpcServer> {
  const args = [
    SERVER,
    '--port',
    '0',
    '--name',
    name,
    ...(options.failWith ? ['--fail-with', options.failWith] : []),
  ];
  const child = spawn(PYTHON, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  const events: ServerEvent[] = [];
  const waiters: { pred: (e: ServerEvent) => boolean; resolve: (e: ServerEvent) => void }[] = [];
  let stderr = '';
  let buffered = '';
  let exited = false;
  const exitedPromise = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      live.delete(child);
      resolve();
    });
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  child.stdout.on('data', (c: Buffer) => {
    buffered += c.toString();
    let nl = buffered.indexOf('\n');
    while (nl !== -1) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      nl = buffered.indexOf('\n');
      if (line.trim() === '') continue;
      const event = JSON.parse(line) as ServerEvent;
      events.push(event);
      for (const w of [...waiters]) {
        if (w.pred(event)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(event);
        }
      }
    }
  });
  const server: Omit<GrpcServer, 'port'> = {
    name,
    pid: child.pid as number,
    events,
    calls: (method) =>
      events.filter((e) => e.event === 'call' && (method === undefined || e.method === method)).length,
    waitFor(pred, timeoutMs = 5000) {
      const seen = events.find(pred);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(
            new Error(
              `gRPC server ${name}: no matching event within ${timeoutMs} ms; events ${JSON.stringify(events)}`,
            ),
          );
        }, timeoutMs);
        const waiter = {
          pred,
          resolve: (e: ServerEvent) => {
            clearTimeout(timer);
            resolve(e);
          },
        };
        waiters.push(waiter);
      });
    },
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exitedPromise;
      clearTimeout(timer);
    },
  };
  return server
    .waitFor((e) => e.event === 'ready', options.timeoutMs ?? 10_000)
    .then((ready) => ({ ...server, port: ready.port as number }))
    .catch(async (err: unknown) => {
      await server.stop();
      throw new Error(`${String(err)}\nstderr: ${stderr}`);
    });
}

/** One call of a client plan (see client.py). */
export interface GrpcCall {
  readonly kind: 'unary' | 'server_stream' | 'client_stream' | 'bidi';
  readonly method: string;
  readonly request?: unknown;
  readonly requests?: readonly unknown[];
  /** Seconds (the gRPC deadline). */
  readonly timeout?: number;
  readonly metadata?: Readonly<Record<string, string>>;
  readonly repeat?: number;
}

/** What client.py reports for one call. */
export interface GrpcResult {
  readonly method: string;
  readonly kind: string;
  /** Status name, e.g. `OK`, `UNAVAILABLE`. */
  readonly code: string;
  readonly details: string;
  readonly responses: readonly Record<string, unknown>[];
  readonly initial: Readonly<Record<string, string>>;
  readonly trailing: Readonly<Record<string, string>>;
  readonly elapsedMs: number;
}

/**
 * Runs `client.py` against `target` (`127.0.0.1:<port>`) with `:authority` `authority`: the calls of
 * `plan` in order on one channel; resolves with one result per call made. Rejects when the client
 * fails or outlives `timeoutMs` (then killed by pid).
 */
export function grpcCalls(
  target: string,
  authority: string,
  plan: readonly GrpcCall[],
  timeoutMs = 20_000,
): Promise<GrpcResult[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      PYTHON,
      [CLIENT, '--target', target, '--authority', authority, JSON.stringify(plan)],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    live.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      live.delete(child);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      live.delete(child);
      if (code !== 0) {
        reject(new Error(`client.py exited with ${String(code)}\nstderr: ${stderr}\nstdout: ${stdout}`));
        return;
      }
      const raw = JSON.parse(stdout) as (Omit<GrpcResult, 'elapsedMs'> & { elapsed_ms: number })[];
      resolve(raw.map(({ elapsed_ms, ...r }) => ({ ...r, elapsedMs: elapsed_ms })));
    });
  });
}
