/**
 * `npm start`: a live mesh on one machine. Starts the control plane on the embedded store
 * (data in `.weft/`) with its certificate authority on (STRICT mTLS between sidecars), applies
 * deploy/examples/mesh.yaml, mints a join token per service, runs the demo services
 * web → api → store (api in two versions) each beside its own sidecar, and sends real traffic to
 * web, printing every two seconds which api version answered. The edge gateway (`weft gateway
 * --gateway edge`, its own identity) serves the Gateway `edge` of mesh.yaml on 127.0.0.1:18080
 * and calls web over mTLS: `curl http://127.0.0.1:18080/` reaches the mesh from outside. Two
 * edge routes carry policies: `/jwt/...` wants a JWT and `/partner/...` an API key (5 requests/s
 * per client); the demo makes the signing key and the API key at start (deploy/examples/demo-edge.ts),
 * applies their SecurityPolicies and prints curl commands with and without the credentials.
 * Shift the split with
 *   bin/weft apply -f deploy/examples/api-50-50.yaml --wait
 * and watch the output change. Ctrl-C stops everything this script started (by pid).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { makeEdgeAuth } from './demo-edge.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cli = 'control-plane/cli/main.ts';
/** V8 flags of every demo process, as bin/weft gives them (young generation capped at 2 × 16 MiB). */
const NODE_FLAGS = ['--max-semi-space-size=16'];
const children: ChildProcess[] = [];
let stopping = false;

/** One demo workload: its app and its sidecar's ports (admin, outbound, inbound = base, +1, +6). */
const workloads = [
  { service: 'web', version: 'v1', app: 18100, base: 15100, upstream: 'api' },
  { service: 'api', version: 'v1', app: 18200, base: 15200, upstream: 'store' },
  { service: 'api', version: 'v2', app: 18300, base: 15300, upstream: 'store' },
  { service: 'store', version: 'v1', app: 18400, base: 15400, upstream: undefined },
] as const;
/**
 * The traffic generator is a mesh client too: it sends to its own sidecar's outbound listener
 * (127.0.0.1:15501, `Host: web`), which calls web over mTLS. Nothing outside the mesh can reach
 * a STRICT inbound listener.
 */
const loadgen = { service: 'loadgen', version: 'v1', app: 18500, base: 15500 } as const;
/**
 * The edge gateway: admin on 15600; its Gateway `edge` (mesh.yaml) listens on 18080 (HTTP).
 * Edge routes (JWT, API keys, rate limits) are declared in mesh.yaml next to `web-public`; their
 * SecurityPolicies come from demo-edge.ts and are listed in the help text below (`edgeRoutes`).
 */
const gateway = { name: 'edge', admin: 15600, http: 18080 } as const;

function start(name: string, args: string[], quiet = true): ChildProcess {
  const child = spawn(process.execPath, [...NODE_FLAGS, ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const show = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      if (!line) continue;
      if (quiet && /"level":30/.test(line)) continue; // info lines stay quiet; warnings and errors show
      process.stdout.write(`[${name}] ${line}\n`);
    }
  };
  child.stdout?.on('data', show);
  child.stderr?.on('data', show);
  child.on('exit', (code, signal) => {
    if (!stopping) process.stdout.write(`[${name}] exited (${code ?? signal})\n`);
  });
  children.push(child);
  return child;
}

async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  clearInterval(traffic);
  clearInterval(report);
  process.stdout.write('\nstopping...\n');
  // Sidecars and apps first (they deregister and drain), the control plane last; each by the
  // pid this script started.
  const [controlPlane, ...rest] = children;
  await Promise.all(rest.map(terminate));
  if (controlPlane) await terminate(controlPlane);
  process.exit(0);
}
function terminate(child: ChildProcess): Promise<void> {
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 8000).unref();
  });
}
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());

async function waitFor(url: string, deadlineMs: number): Promise<void> {
  for (;;) {
    try {
      const res = await request(url);
      await res.body.dump();
      if (res.statusCode === 200) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadlineMs) throw new Error(`${url} did not become ready`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

start('control-plane', [cli, 'control-plane', '--data-dir', '.weft', '--tls']);
await waitFor('http://127.0.0.1:15014/ready', Date.now() + 20_000);
const token = (await readFile(`${root}.weft/admin-token`, 'utf8')).trim();
const admin = { authorization: `Bearer ${token}` };
const applied = await request('http://127.0.0.1:15080/v1/apply', {
  method: 'POST',
  headers: { ...admin, 'content-type': 'application/yaml' },
  body: await readFile(`${root}deploy/examples/mesh.yaml`, 'utf8'),
});
const summary = (await applied.body.json()) as {
  revision: number;
  results: { id: string; action: string }[];
};
process.stdout.write(
  `[demo] applied deploy/examples/mesh.yaml at revision ${summary.revision}: ${summary.results.map((r) => `${r.id} ${r.action}`).join(', ')}\n`,
);

/** The edge routes' credentials: a fresh key pair and API key each start, their SecurityPolicies. */
const edgeAuth = await makeEdgeAuth();
const appliedAuth = await request('http://127.0.0.1:15080/v1/apply', {
  method: 'POST',
  headers: { ...admin, 'content-type': 'application/yaml' },
  body: edgeAuth.yaml,
});
const authSummary = (await appliedAuth.body.json()) as {
  revision?: number;
  results?: { id: string; action: string }[];
  error?: string;
};
if (appliedAuth.statusCode !== 200) {
  throw new Error(`applying the edge SecurityPolicies: ${JSON.stringify(authSummary)}`);
}
process.stdout.write(
  `[demo] applied the edge SecurityPolicies at revision ${authSummary.revision}: ${(authSummary.results ?? []).map((r) => `${r.id} ${r.action}`).join(', ')}\n`,
);
const edge = `http://127.0.0.1:${gateway.http}`;
/** Example lines for the edge routes of mesh.yaml (JWT route, API-key route), printed below. */
const edgeRoutes = [
  `Edge routes with policies (the token and key are new at each start; the token expires in 1 h):`,
  `  JWT, 200         curl -si ${edge}/jwt/hello -H 'Authorization: Bearer ${edgeAuth.token}'`,
  `  JWT, 401         curl -si ${edge}/jwt/hello`,
  `  API key, 200     curl -si ${edge}/partner/hello -H 'x-api-key: ${edgeAuth.apiKey}'`,
  `  API key, 401     curl -si ${edge}/partner/hello`,
  `  5/s, then 429    for i in $(seq 8); do curl -s -o /dev/null -w '%{http_code} ' ${edge}/partner/hello -H 'x-api-key: ${edgeAuth.apiKey}'; done; echo`,
];

/** A join token per service: each sidecar proves its identity with it to get its certificate. */
async function joinToken(service: string): Promise<string> {
  const res = await request('http://127.0.0.1:15080/v1/tokens', {
    method: 'POST',
    headers: { ...admin, 'content-type': 'application/json' },
    body: JSON.stringify({ service, ttl: '1h' }),
  });
  const created = (await res.body.json()) as { token?: string; error?: string };
  if (created.token === undefined)
    throw new Error(`token for ${service}: ${created.error ?? res.statusCode}`);
  return created.token;
}

async function startSidecar(w: {
  service: string;
  version: string;
  app: number;
  base: number;
}): Promise<void> {
  const name = `${w.service}-${w.version}`;
  start(`${name}-sidecar`, [
    cli,
    'sidecar',
    '--control-plane',
    '127.0.0.1:15012',
    '--ca-bundle',
    '.weft/ca-bundle.pem',
    '--token',
    await joinToken(w.service),
    '--service',
    w.service,
    '--workload',
    name,
    '--labels',
    `version=${w.version}`,
    '--app-port',
    String(w.app),
    '--admin-port',
    String(w.base),
    '--outbound-port',
    String(w.base + 1),
    '--inbound-port',
    String(w.base + 6),
  ]);
}

for (const w of workloads) {
  const name = `${w.service}-${w.version}`;
  start(`${name}-app`, [
    'deploy/examples/demo-app.ts',
    '--name',
    w.service,
    '--version',
    w.version,
    '--port',
    String(w.app),
    ...(w.upstream ? ['--upstream', w.upstream, '--outbound', `127.0.0.1:${w.base + 1}`] : []),
  ]);
  await startSidecar(w);
}
await startSidecar(loadgen);
start('edge-gateway', [
  cli,
  'gateway',
  '--control-plane',
  '127.0.0.1:15012',
  '--ca-bundle',
  '.weft/ca-bundle.pem',
  '--token',
  await joinToken(gateway.name),
  '--gateway',
  gateway.name,
  '--admin-port',
  String(gateway.admin),
]);
await Promise.all([
  ...[...workloads, loadgen].map((w) => waitFor(`http://127.0.0.1:${w.base}/ready`, Date.now() + 20_000)),
  waitFor(`http://127.0.0.1:${gateway.admin}/ready`, Date.now() + 20_000),
]);

process.stdout.write(`
Weft mesh is running: control plane, web → api (v1, v2) → store, each with a sidecar, STRICT mTLS.
  shift traffic     bin/weft apply -f deploy/examples/api-50-50.yaml --wait
  proxies           bin/weft proxy-status
  routes            bin/weft get httproutes
  a proxy's config  bin/weft proxy-config web-v1-15106.default routes
  metrics           curl -s http://127.0.0.1:15100/metrics | grep weft_requests_total   (web's sidecar)
  control plane     curl -s http://127.0.0.1:15014/metrics | grep weft_cp_
  identities        curl -s http://127.0.0.1:15200/config_dump | grep -A4 '"identity"'      (api-v1's SVID)
  the CA            bin/weft ca status    /  bin/weft ca rotate --overlap 2m
Edge gateway (Gateway "edge", HTTPRoute "web-public"; calls web over mTLS as .../sa/edge):
  from outside      curl -s http://127.0.0.1:${gateway.http}/
  with headers      curl -si http://127.0.0.1:${gateway.http}/hello -H 'x-request-id: demo-1'
  its config        curl -s http://127.0.0.1:${gateway.admin}/config_dump
  gateway metrics   curl -s http://127.0.0.1:${gateway.admin}/metrics | grep 'reporter="gateway"'
${edgeRoutes.join('\n')}
Traffic: a request to web every 100 ms from the loadgen workload (through its sidecar, 127.0.0.1:15501).
Ctrl-C stops everything.

`);

const counts = { v1: 0, v2: 0, other: 0, errors: 0 };
const traffic = setInterval(() => {
  request(`http://127.0.0.1:${loadgen.base + 1}/`, { headers: { host: 'web' } }).then(
    async (res) => {
      const body = (await res.body.json().catch(() => undefined)) as
        | { downstream?: { version?: string; service?: string } }
        | undefined;
      const version = body?.downstream?.version;
      if (res.statusCode !== 200) counts.errors++;
      else if (version === 'v1' || version === 'v2') counts[version]++;
      else counts.other++;
    },
    () => {
      counts.errors++;
    },
  );
}, 100);
const report = setInterval(() => {
  const total = counts.v1 + counts.v2 + counts.other + counts.errors;
  const pct = (n: number) => (total === 0 ? 0 : Math.round((100 * n) / total));
  process.stdout.write(
    `[traffic] last 2 s: ${total} requests via web → api: v1 ${counts.v1} (${pct(counts.v1)}%), v2 ${counts.v2} (${pct(counts.v2)}%), errors ${counts.errors}\n`,
  );
  counts.v1 = counts.v2 = counts.other = counts.errors = 0;
}, 2000);
