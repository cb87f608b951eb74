/**
 * `npm start` (until the control plane lands): runs the example upstream and a sidecar on
 * deploy/examples/sidecar-static.yaml, sends a request through the outbound listener every
 * second and prints what came back, with where to look. Ctrl-C stops everything it started.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';

const root = fileURLToPath(new URL('../../', import.meta.url));
const children: ChildProcess[] = [];

function start(name: string, args: string[]): ChildProcess {
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout?.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) if (line) process.stdout.write(`[${name}] ${line}\n`);
  });
  child.on('exit', (code, signal) => {
    if (!stopping) {
      process.stdout.write(`[${name}] exited (${code ?? signal}); stopping the demo\n`);
      stop();
    }
  });
  children.push(child);
  return child;
}

let stopping = false;
function stop(): void {
  stopping = true;
  clearInterval(traffic);
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
}
process.once('SIGINT', stop);
process.once('SIGTERM', stop);

async function waitReady(url: string, deadlineMs: number): Promise<void> {
  while (Date.now() < deadlineMs) {
    try {
      const res = await request(url);
      await res.body.dump();
      if (res.statusCode === 200) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not become ready`);
}

start('echo', ['deploy/examples/echo-server.ts', '8080']);
start('sidecar', ['control-plane/cli/main.ts', 'sidecar', '--config', 'deploy/examples/sidecar-static.yaml']);
await waitReady('http://127.0.0.1:15000/ready', Date.now() + 15_000);
process.stdout.write(`
Weft demo is running (static config; the control plane comes with the next milestone):
  outbound listener  curl -x http://127.0.0.1:15001 http://echo/hello
  canary route       curl -H 'Host: echo' -H 'x-canary: true' http://127.0.0.1:15001/api/x -i
  inbound listener   curl http://127.0.0.1:15006/
  metrics            curl http://127.0.0.1:15000/metrics | grep weft_
  config             curl http://127.0.0.1:15000/config_dump
Ctrl-C stops everything.
`);

let n = 0;
const traffic = setInterval(() => {
  n++;
  const canary = n % 3 === 0;
  request('http://127.0.0.1:15001/api/items', {
    headers: { host: 'echo', ...(canary && { 'x-canary': 'true' }) },
  }).then(
    async (res) => {
      await res.body.dump();
      process.stdout.write(
        `[traffic] GET echo/api/items${canary ? ' (canary)' : ''} -> ${res.statusCode} route=${res.headers['x-weft-route'] ?? 'default'}\n`,
      );
    },
    (err: unknown) => process.stdout.write(`[traffic] error: ${String(err)}\n`),
  );
}, 1000);
