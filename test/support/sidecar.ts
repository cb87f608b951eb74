/**
 * Test harness: runs a real `weft sidecar` process on a generated bootstrap with every port
 * set to 0, learns the bound ports from its JSON log lines, and stops it by the pid it started.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { Bootstrap } from '../../sidecar/proxy/config/types.ts';

export const WEFT_CLI = fileURLToPath(new URL('../../control-plane/cli/main.ts', import.meta.url));

export interface RunningSidecar {
  readonly pid: number;
  readonly adminPort: number;
  /** The bootstrap file the sidecar runs on (rewrite it and send SIGHUP to reload). */
  readonly configPath: string;
  /** Bound port by listener name. */
  readonly ports: Readonly<Record<string, number>>;
  readonly child: ChildProcess;
  /** Every stdout/stderr line so far. */
  readonly output: string[];
  /** `http://127.0.0.1:<port>` of a listener. */
  url(listener: string): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code once the process is gone. */
  stop(graceMs?: number): Promise<number | null>;
}

/** Starts a sidecar; resolves once it logged `sidecar ready` (rejects on exit or after `timeoutMs`). */
export async function startSidecar(
  bootstrap: Bootstrap,
  options: {
    extraArgs?: readonly string[];
    timeoutMs?: number;
    /** `gateway` runs `weft gateway --config` (the edge filters) instead of `weft sidecar`. */
    role?: 'sidecar' | 'gateway';
  } = {},
): Promise<RunningSidecar> {
  const role = options.role ?? 'sidecar';
  const dir = await mkdtemp(join(tmpdir(), 'weft-test-'));
  const file = join(dir, 'bootstrap.yaml');
  await writeFile(file, stringify(bootstrap));
  const child = spawn(
    process.execPath,
    [WEFT_CLI, role, '--config', file, '--admin-port', '0', ...(options.extraArgs ?? [])],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const output: string[] = [];
  const ports: Record<string, number> = {};
  let adminPort = 0;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${role} not ready in time:\n${output.join('\n')}`)),
      options.timeoutMs ?? 15_000,
    );
    let buffered = '';
    const onLine = (line: string) => {
      output.push(line);
      try {
        const entry = JSON.parse(line) as { msg?: string; name?: string; port?: number };
        if (entry.msg === 'admin ready' && entry.port) adminPort = entry.port;
        if (entry.msg === 'listener ready' && entry.name && entry.port) ports[entry.name] = entry.port;
        if (entry.msg === `${role} ready`) {
          clearTimeout(timer);
          resolve();
        }
      } catch {
        // not a JSON line (stderr text); kept in output
      }
    };
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString();
      let nl = buffered.indexOf('\n');
      while (nl !== -1) {
        onLine(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
        nl = buffered.indexOf('\n');
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`sidecar exited with ${code}:\n${output.join('\n')}`));
    });
  });

  return {
    pid: child.pid as number,
    adminPort,
    configPath: file,
    ports,
    child,
    output,
    url: (listener) => `http://127.0.0.1:${ports[listener]}`,
    async stop(graceMs = 5000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        const code = await exited;
        clearTimeout(timer);
        await rm(dir, { recursive: true, force: true });
        return code;
      }
      await rm(dir, { recursive: true, force: true });
      return child.exitCode;
    },
  };
}

/**
 * A bootstrap with one OUTBOUND listener `outbound` (port 0) and one route config `r` with the
 * given virtual hosts; clusters and endpoints as given.
 */
export function outboundBootstrap(parts: {
  virtualHosts: NonNullable<Bootstrap['routes']>[number]['virtualHosts'];
  clusters?: Bootstrap['clusters'];
  endpoints?: Bootstrap['endpoints'];
  listener?: Partial<NonNullable<Bootstrap['listeners']>[number]>;
}): Bootstrap {
  return {
    node: { id: 'test-1', service: 'test', namespace: 'default', workload: 'test-v1' },
    admin: { address: '127.0.0.1', port: 0 },
    listeners: [
      {
        name: 'outbound',
        address: '127.0.0.1',
        port: 0,
        direction: 'OUTBOUND',
        routeConfigName: 'r',
        ...parts.listener,
      },
    ],
    routes: [{ name: 'r', virtualHosts: parts.virtualHosts ?? [] }],
    clusters: parts.clusters ?? [],
    endpoints: parts.endpoints ?? [],
  };
}
