/**
 * Test harness for a live mesh on loopback: a real `weft control-plane` and real dynamic
 * `weft sidecar` processes (spawned through `bin/weft`), the `weft` admin verbs as processes,
 * and free-port allocation.
 *
 * Invariants:
 * - Every process is signalled only through the pid this module spawned (`child.kill`), never
 *   by name. `stop()` sends SIGTERM and SIGKILL after a grace period; `kill(signal)` sends one
 *   signal (crash tests) and waits for the exit. Should the test process itself exit with
 *   children still running, they get SIGKILL from an `exit` hook (again by pid).
 * - Readiness is an event, never a sleep: the control plane's ports come from its JSON log
 *   lines (`discovery ready`, `admin api ready`, `monitoring ready`, then `control plane ready`);
 *   a sidecar's admin port from `admin ready`, its readiness from `GET /ready` polled until
 *   200 with a deadline. A process that exits while being waited on fails the wait at once,
 *   with its output.
 * - Data-plane ports are real numbers (`freePorts`): sidecars advertise them to their peers.
 *   The control plane binds port 0 and reports what it got.
 * - Nothing here removes directories it did not create; data dirs belong to the caller, so a
 *   sidecar can be restarted on the same `--data-dir`.
 * - mTLS: `startControlPlane({ tls: true, certTtl: '4s' })` runs the mesh CA (`--tls`, trust
 *   bundle in `<dataDir>/ca-bundle.pem`); `joinToken(cp, service)` mints a join token through the
 *   admin API; `startMeshSidecar({ caBundle, token })` passes `--ca-bundle` and `--token`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';

/** The `weft` command of this checkout (a shell wrapper that execs the pinned Node: same pid). */
export const WEFT_BIN = fileURLToPath(new URL('../../bin/weft', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

// ---------------------------------------------------------------------------------------------
// Ports

export { freePort, freePorts } from './ports.ts';

// ---------------------------------------------------------------------------------------------
// Polling

/**
 * Calls `probe` until it returns a value other than undefined; rejects with `description` (and
 * the last probe error) after `timeoutMs`. `intervalMs` between attempts.
 */
export async function pollUntil<T>(
  description: string,
  probe: () => Promise<T | undefined> | T | undefined,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const detail = lastError === undefined ? '' : ` (last error: ${String(lastError)})`;
      throw new Error(
        `timed out after ${options.timeoutMs ?? 10_000} ms waiting for ${description}${detail}`,
      );
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 50));
  }
}

/** GET `url`; resolves with the status (never throws on HTTP errors; throws on socket errors). */
async function httpStatus(url: string): Promise<number> {
  const res = await request(url, { headersTimeout: 2000, bodyTimeout: 2000 });
  await res.body.dump();
  return res.statusCode;
}

// ---------------------------------------------------------------------------------------------
// Processes

/** One JSON log line of a weft process (pino). */
export interface LogEntry {
  readonly msg?: string;
  readonly component?: string;
  readonly port?: number;
  readonly [field: string]: unknown;
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** A child process started by this harness, with its output and log lines. */
export class WeftProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Every stdout/stderr line so far. */
  readonly output: string[] = [];
  /** The lines that parsed as JSON objects. */
  readonly logs: LogEntry[] = [];
  /** Resolves once the process has exited (never rejects). */
  readonly exited: Promise<Exit>;
  readonly #waiters = new Set<() => void>();
  #exit: Exit | undefined;

  constructor(name: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv } = {}) {
    this.name = name;
    this.child = spawn(WEFT_BIN, args, {
      cwd: ROOT,
      env: options.env ?? cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    live.add(this.child);
    this.exited = new Promise<Exit>((resolve) => {
      this.child.once('exit', (code, signal) => {
        live.delete(this.child);
        this.#exit = { code, signal };
        this.#notify();
        resolve(this.#exit);
      });
    });
    this.child.once('error', (err) => {
      this.output.push(`spawn error: ${err.message}`);
    });
    for (const stream of [this.child.stdout, this.child.stderr]) {
      let buffered = '';
      stream?.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        let nl = buffered.indexOf('\n');
        while (nl !== -1) {
          this.#line(buffered.slice(0, nl));
          buffered = buffered.slice(nl + 1);
          nl = buffered.indexOf('\n');
        }
      });
    }
  }

  get pid(): number {
    return this.child.pid as number;
  }

  /** True until the process has exited. */
  get running(): boolean {
    return this.#exit === undefined;
  }

  /** Output so far, for failure messages. */
  describe(): string {
    return `${this.name} (pid ${this.pid}) output:\n${this.output.join('\n')}`;
  }

  /**
   * Resolves with the first log line (already seen or still to come) that `match` accepts;
   * rejects when the process exits first or after `timeoutMs`.
   */
  waitForLog(
    description: string,
    match: (entry: LogEntry) => boolean,
    timeoutMs = 15_000,
  ): Promise<LogEntry> {
    return new Promise<LogEntry>((resolve, reject) => {
      const check = (): boolean => {
        const found = this.logs.find(match);
        if (found !== undefined) {
          finish();
          resolve(found);
          return true;
        }
        if (this.#exit !== undefined) {
          finish();
          reject(
            new Error(
              `${this.name} exited (${this.#exit.code ?? this.#exit.signal}) before logging ${description}\n${this.describe()}`,
            ),
          );
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        finish();
        reject(
          new Error(`${this.name} did not log ${description} within ${timeoutMs} ms\n${this.describe()}`),
        );
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
      };
      const waiter = () => void check();
      if (!check()) this.#waiters.add(waiter);
    });
  }

  /** Sends `signal` (by pid) and resolves once the process has exited. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<Exit> {
    if (this.#exit !== undefined) return this.#exit;
    this.child.kill(signal);
    return this.exited;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit. Safe to call more than once. */
  async stop(graceMs = 5000): Promise<Exit> {
    if (this.#exit !== undefined) return this.#exit;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (this.#exit === undefined) this.child.kill('SIGKILL');
    }, graceMs);
    const exit = await this.exited;
    clearTimeout(timer);
    return exit;
  }

  #line(line: string): void {
    this.output.push(line);
    if (line.startsWith('{')) {
      try {
        const entry = JSON.parse(line) as unknown;
        if (entry !== null && typeof entry === 'object') this.logs.push(entry as LogEntry);
      } catch {
        // not a JSON line; kept in output
      }
    }
    this.#notify();
  }

  #notify(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }
}

/** The environment for weft processes: ours without WEFT_* settings and colours. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('WEFT_') && k !== 'FORCE_COLOR') env[k] = v;
  }
  return { ...env, NO_COLOR: '1', ...extra };
}

/** Stops every process given (concurrently), ignoring ones already gone. */
export async function stopAll(
  processes: Iterable<{ stop(graceMs?: number): Promise<unknown> }>,
): Promise<void> {
  await Promise.all([...processes].map((p) => p.stop()));
}

// ---------------------------------------------------------------------------------------------
// Control plane

export interface ControlPlane {
  readonly process: WeftProcess;
  readonly dataDir: string;
  readonly grpcPort: number;
  readonly adminPort: number;
  readonly monitoringPort: number;
  /** `127.0.0.1:<grpc port>`, for `--control-plane`. */
  readonly discoveryAddress: string;
  /** `http://127.0.0.1:<admin port>`, for `--server`. */
  readonly server: string;
  /** The admin API bearer token (from `<dataDir>/admin-token`). */
  readonly token: string;
  /** With `tls`: `<dataDir>/ca-bundle.pem`, for the sidecars' `--ca-bundle`; else undefined. */
  readonly caBundle: string | undefined;
  stop(graceMs?: number): Promise<Exit>;
  kill(signal?: NodeJS.Signals): Promise<Exit>;
}

/**
 * Starts `weft control-plane` on the embedded store in `dataDir` (ports 0 unless given) and
 * resolves once it logged `control plane ready`, with the ports it logged and its admin token.
 */
export async function startControlPlane(options: {
  dataDir: string;
  grpcPort?: number;
  adminPort?: number;
  monitoringPort?: number;
  timeoutMs?: number;
  /** `--tls`: the mesh CA, TLS discovery and the Identity service (default false). */
  tls?: boolean;
  /** `--cert-ttl`: workload certificate lifetime, a duration like `4s` (with `tls`). */
  certTtl?: string;
  /** More flags, appended as given. */
  extraArgs?: readonly string[];
}): Promise<ControlPlane> {
  const proc = new WeftProcess('control-plane', [
    'control-plane',
    '--data-dir',
    options.dataDir,
    '--address',
    '127.0.0.1',
    '--grpc-port',
    String(options.grpcPort ?? 0),
    '--admin-port',
    String(options.adminPort ?? 0),
    '--monitoring-port',
    String(options.monitoringPort ?? 0),
    ...(options.tls === true ? ['--tls'] : ['--no-tls']),
    ...(options.certTtl !== undefined ? ['--cert-ttl', options.certTtl] : []),
    ...(options.extraArgs ?? []),
  ]);
  try {
    const timeoutMs = options.timeoutMs ?? 20_000;
    await proc.waitForLog('"control plane ready"', (e) => e.msg === 'control plane ready', timeoutMs);
    const portOf = (msg: string): number => {
      const entry = proc.logs.find((e) => e.component === 'control-plane' && e.msg === msg);
      if (typeof entry?.port !== 'number') throw new Error(`no port in "${msg}"\n${proc.describe()}`);
      return entry.port;
    };
    const grpcPort = portOf('discovery ready');
    const adminPort = portOf('admin api ready');
    const monitoringPort = portOf('monitoring ready');
    const token = (await readFile(`${options.dataDir}/admin-token`, 'utf8')).trim();
    return {
      process: proc,
      dataDir: options.dataDir,
      grpcPort,
      adminPort,
      monitoringPort,
      discoveryAddress: `127.0.0.1:${grpcPort}`,
      server: `http://127.0.0.1:${adminPort}`,
      token,
      caBundle: options.tls === true ? join(options.dataDir, 'ca-bundle.pem') : undefined,
      stop: (graceMs) => proc.stop(graceMs),
      kill: (signal) => proc.kill(signal),
    };
  } catch (err) {
    await proc.stop(1000);
    throw err;
  }
}

/**
 * Mints a join token for `service` through the admin API (`POST /v1/tokens`) of a control plane
 * started with `tls`; resolves with the token (`<id>.<secret>`) for a sidecar's `--token`.
 */
export async function joinToken(
  cp: Pick<ControlPlane, 'server' | 'token'>,
  service: string,
  options: { namespace?: string; ttl?: string } = {},
): Promise<string> {
  const res = await request(`${cp.server}/v1/tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${cp.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      service,
      ...(options.namespace !== undefined && { namespace: options.namespace }),
      ttl: options.ttl ?? '1h',
    }),
  });
  const body = (await res.body.json()) as { token?: string; error?: string };
  if (res.statusCode !== 200 && res.statusCode !== 201) {
    throw new Error(`POST /v1/tokens for ${service}: ${res.statusCode} ${body.error ?? ''}`);
  }
  if (typeof body.token !== 'string') throw new Error(`POST /v1/tokens for ${service}: no token`);
  return body.token;
}

// ---------------------------------------------------------------------------------------------
// Sidecars

export interface MeshSidecarOptions {
  /** `127.0.0.1:<grpc port>` of the control plane. */
  readonly controlPlane: string;
  readonly service: string;
  readonly workload: string;
  /** Extra endpoint labels, e.g. `{ version: 'v1' }`. */
  readonly labels?: Readonly<Record<string, string>>;
  readonly appPort: number;
  readonly outboundPort: number;
  readonly inboundPort: number;
  /** Admin port (default 0: learned from the `admin ready` line). */
  readonly adminPort?: number;
  readonly dataDir: string;
  readonly proxyId?: string;
  /** `--drain-delay` in ms (default 0: tests do not wait for peers to learn of a drain). */
  readonly drainDelayMs?: number;
  /** Wait until `/ready` answers 200 (default true); false resolves once admin is up. */
  readonly waitReady?: boolean;
  readonly timeoutMs?: number;
  /** mTLS: `--ca-bundle` (the control plane's `ca-bundle.pem`). */
  readonly caBundle?: string;
  /** mTLS: `--token`, the join token for the first certificate (see `joinToken`). */
  readonly token?: string;
  /** More flags, appended as given. */
  readonly extraArgs?: readonly string[];
}

export interface MeshSidecar {
  readonly process: WeftProcess;
  readonly options: MeshSidecarOptions;
  readonly proxyId: string;
  readonly adminPort: number;
  /** `http://127.0.0.1:<admin port>` */
  readonly adminUrl: string;
  /** `http://127.0.0.1:<outbound port>` */
  readonly outboundUrl: string;
  /** `http://127.0.0.1:<inbound port>` */
  readonly inboundUrl: string;
  /** Polls `/ready` until 200 (rejects on exit or after `timeoutMs`). */
  ready(timeoutMs?: number): Promise<void>;
  /** The admin `/config_dump` document. */
  configDump(): Promise<ConfigDump>;
  /** The admin `/metrics` text (Prometheus exposition). */
  metrics(): Promise<string>;
  stop(graceMs?: number): Promise<Exit>;
  kill(signal?: NodeJS.Signals): Promise<Exit>;
}

/** The identity entry of a sidecar's `/config_dump` (null before its first certificate). */
export interface IdentityDump {
  readonly spiffeId: string;
  readonly expiresAt: string;
  readonly trustDomain: string;
  /** Bumped with every new certificate. */
  readonly generation: number;
  /** How many roots peers are verified against. */
  readonly roots: number;
}

/** The parts of a sidecar's `/config_dump` tests look at. */
export interface ConfigDump {
  readonly version: string;
  readonly identity?: IdentityDump | null;
  readonly config: {
    readonly endpoints: readonly {
      readonly clusterName: string;
      readonly endpoints?: readonly { readonly address: string; readonly port: number }[];
    }[];
  } | null;
}

/** The proxy id a sidecar uses when none is given (as sidecar/run.ts computes it). */
export function defaultProxyId(workload: string, inboundPort: number, namespace = 'default'): string {
  return `${workload}-${inboundPort}.${namespace}`;
}

/**
 * Starts `weft sidecar --control-plane ...` and resolves once its admin listener is up and
 * (unless `waitReady: false`) `/ready` answers 200.
 */
export async function startMeshSidecar(options: MeshSidecarOptions): Promise<MeshSidecar> {
  const labels = Object.entries(options.labels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  const proxyId = options.proxyId ?? defaultProxyId(options.workload, options.inboundPort);
  const proc = new WeftProcess(`sidecar ${proxyId}`, [
    'sidecar',
    '--control-plane',
    options.controlPlane,
    '--service',
    options.service,
    '--workload',
    options.workload,
    ...(labels ? ['--labels', labels] : []),
    '--app-port',
    String(options.appPort),
    '--outbound-port',
    String(options.outboundPort),
    '--inbound-port',
    String(options.inboundPort),
    '--admin-port',
    String(options.adminPort ?? 0),
    '--data-dir',
    options.dataDir,
    '--proxy-id',
    proxyId,
    '--drain-delay',
    String(options.drainDelayMs ?? 0),
    ...(options.caBundle !== undefined ? ['--ca-bundle', options.caBundle] : []),
    ...(options.token !== undefined ? ['--token', options.token] : []),
    ...(options.extraArgs ?? []),
  ]);
  const timeoutMs = options.timeoutMs ?? 20_000;
  try {
    const admin = await proc.waitForLog('"admin ready"', (e) => e.msg === 'admin ready', timeoutMs);
    const adminPort = admin.port as number;
    const adminUrl = `http://127.0.0.1:${adminPort}`;
    const sidecar: MeshSidecar = {
      process: proc,
      options,
      proxyId,
      adminPort,
      adminUrl,
      outboundUrl: `http://127.0.0.1:${options.outboundPort}`,
      inboundUrl: `http://127.0.0.1:${options.inboundPort}`,
      async ready(readyTimeoutMs = timeoutMs) {
        await pollUntil(
          `${proxyId} /ready to answer 200`,
          async () => {
            if (!proc.running) throw new Error(`exited\n${proc.describe()}`);
            return (await httpStatus(`${adminUrl}/ready`)) === 200 ? true : undefined;
          },
          { timeoutMs: readyTimeoutMs },
        ).catch((err: unknown) => {
          throw new Error(`${String(err)}\n${proc.describe()}`);
        });
      },
      async configDump() {
        const res = await request(`${adminUrl}/config_dump`);
        return (await res.body.json()) as ConfigDump;
      },
      async metrics() {
        const res = await request(`${adminUrl}/metrics`);
        return res.body.text();
      },
      stop: (graceMs) => proc.stop(graceMs),
      kill: (signal) => proc.kill(signal),
    };
    if (options.waitReady !== false) await sidecar.ready();
    return sidecar;
  } catch (err) {
    await proc.stop(1000);
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// The weft command

export interface WeftResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `bin/weft args` to completion (stdin empty) and resolves with its exit code and output.
 * `env` is added to a clean environment (see `cleanEnv`); killed by pid after `timeoutMs`.
 */
export function weft(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<WeftResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(WEFT_BIN, args, {
      cwd: options.cwd ?? ROOT,
      env: cleanEnv(options.env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    live.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      live.delete(child);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      live.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}
