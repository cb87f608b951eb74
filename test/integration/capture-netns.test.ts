/**
 * Transparent capture (control-plane/inject/capture.ts) inside network namespaces this test makes:
 * a "pod" namespace and a "client" namespace joined by a veth pair (nothing is added to the host's
 * own namespace). In the pod: the capture rules (iptables-restore), a static `weft sidecar`
 * (run as root = the proxy UID here; inbound on every address, outbound on loopback) and an app
 * that listens on 127.0.0.1 only. Shown:
 * - inbound: the client reaches the app's port on the pod address although the app listens on
 *   loopback only, because PREROUTING redirects it to the sidecar's inbound listener;
 * - outbound: the app (another UID) connects to an address where nothing listens and gets the
 *   answer of the service named by its Host header, because OUTPUT redirects it to the
 *   sidecar's outbound listener; the sidecar's own connections are not captured (no loop).
 * Needs root, `ip` (iproute2) and `iptables`; skipped, with the reason, where namespaces cannot
 * be made.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureRules } from '../../control-plane/inject/capture.ts';
import { pollUntil, WEFT_BIN } from '../support/mesh.ts';

const APP_PORT = 8080;
const POD_IP = '10.231.0.2';
const CLIENT_IP = '10.231.0.1';
const id = `${process.pid % 100000}`;
const POD_NS = `weft-pod-${id}`;
const CLIENT_NS = `weft-cli-${id}`;

function whyNot(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to make network namespaces';
  for (const tool of ['ip', 'iptables-restore', 'setpriv', 'curl']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `needs ${tool} (scripts/ensure-test-deps.sh installs iproute2 and iptables)`;
    }
  }
  try {
    execFileSync('ip', ['netns', 'add', `weft-probe-${id}`], { stdio: 'ignore' });
    execFileSync('ip', ['netns', 'del', `weft-probe-${id}`], { stdio: 'ignore' });
  } catch {
    return 'cannot make a network namespace here (ip netns add failed: no CAP_SYS_ADMIN?)';
  }
  return undefined;
}
const skipReason = whyNot();

function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', ...(input !== undefined && { input }) });
}

function inNs(
  ns: string,
  args: string[],
  timeoutMs = 5000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'ip',
      ['netns', 'exec', ns, ...args],
      { timeout: timeoutMs, encoding: 'utf8' },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

const APP = `
const http = require('node:http');
http.createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ app: 'echo', host: req.headers.host, url: req.url, requestId: req.headers['x-request-id'] ?? null }));
}).listen(${APP_PORT}, '127.0.0.1');
`;

const BOOTSTRAP = `
node: { id: pod-1.default, service: pod, namespace: default, workload: pod }
admin: { address: 127.0.0.1, port: 15000 }
listeners:
  - { name: outbound, address: 127.0.0.1, port: 15001, direction: OUTBOUND, routeConfigName: outbound }
  - { name: inbound, address: 0.0.0.0, port: 15006, direction: INBOUND, routeConfigName: inbound }
routes:
  - name: outbound
    virtualHosts:
      - name: echo
        domains: [echo]
        routes: [{ name: echo, route: { clusters: [{ name: echo }] } }]
  - name: inbound
    virtualHosts:
      - name: app
        domains: ["*"]
        routes: [{ name: app, route: { clusters: [{ name: app }] } }]
clusters: [{ name: echo }, { name: app }]
endpoints:
  - clusterName: echo
    endpoints: [{ address: 127.0.0.1, port: ${APP_PORT} }]
  - clusterName: app
    endpoints: [{ address: 127.0.0.1, port: ${APP_PORT} }]
`;

describe.skipIf(skipReason !== undefined)(
  `transparent capture in a network namespace${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    let dir: string;
    const children: ChildProcess[] = [];

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'weft-capture-'));
      sh('ip', ['netns', 'add', POD_NS]);
      sh('ip', ['netns', 'add', CLIENT_NS]);
      sh('ip', [
        'link',
        'add',
        `wp${id}`,
        'netns',
        POD_NS,
        'type',
        'veth',
        'peer',
        'name',
        `wc${id}`,
        'netns',
        CLIENT_NS,
      ]);
      for (const [ns, dev, ip] of [
        [POD_NS, `wp${id}`, POD_IP],
        [CLIENT_NS, `wc${id}`, CLIENT_IP],
      ] as const) {
        sh('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', dev]);
        sh('ip', ['-n', ns, 'link', 'set', dev, 'up']);
        sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      }
      const rules = captureRules({ inboundPort: 15006, outboundPort: 15001, adminPort: 15000, proxyUid: 0 });
      sh('ip', ['netns', 'exec', POD_NS, 'iptables-restore'], rules);

      await chmod(dir, 0o755); // the app runs as nobody and must read its script
      await writeFile(join(dir, 'app.cjs'), APP, { mode: 0o644 });
      await writeFile(join(dir, 'bootstrap.yaml'), BOOTSTRAP);
      const start = (args: string[]) => {
        const child = spawn('ip', ['netns', 'exec', POD_NS, ...args], { stdio: 'ignore' });
        children.push(child);
      };
      // The app as nobody (its traffic is captured); the sidecar as root (the proxy UID here).
      start([
        'setpriv',
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        process.execPath,
        join(dir, 'app.cjs'),
      ]);
      start([WEFT_BIN, 'sidecar', '--config', join(dir, 'bootstrap.yaml'), '--log-level', 'warn']);
      await pollUntil(
        'the sidecar and the app in the pod namespace',
        async () => {
          const ready = await inNs(POD_NS, ['curl', '-sf', 'http://127.0.0.1:15000/ready']);
          const app = await inNs(POD_NS, ['curl', '-sf', `http://127.0.0.1:${APP_PORT}/`]);
          return ready.code === 0 && app.code === 0 ? true : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 200 },
      );
    }, 30_000);

    afterAll(async () => {
      await Promise.all(
        children.map(
          (c) =>
            new Promise<void>((resolve) => {
              if (c.exitCode !== null || c.signalCode !== null) return resolve();
              c.once('exit', () => resolve());
              c.kill('SIGTERM');
              setTimeout(() => c.kill('SIGKILL'), 5000).unref();
            }),
        ),
      );
      for (const ns of [POD_NS, CLIENT_NS]) {
        try {
          execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
        } catch {
          // already gone
        }
      }
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('installs the rules it generated', async () => {
      const { stdout } = await inNs(POD_NS, ['iptables', '-t', 'nat', '-S']);
      expect(stdout).toContain('-A PREROUTING -p tcp -j WEFT_INBOUND');
      expect(stdout).toContain('-A WEFT_INBOUND -p tcp -j REDIRECT --to-ports 15006');
      expect(stdout).toContain('-A WEFT_OUTPUT -m owner --uid-owner 0 -j RETURN');
      expect(stdout).toContain('-A WEFT_OUTPUT -p tcp -j REDIRECT --to-ports 15001');
    });

    it('redirects inbound connections to the sidecar, which forwards them to the app on loopback', async () => {
      const r = await inNs(CLIENT_NS, ['curl', '-s', '-D', '-', `http://${POD_IP}:${APP_PORT}/inbound?x=1`]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^HTTP\/1\.1 200/);
      const body = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as {
        url: string;
        requestId: string | null;
      };
      expect(body.url).toBe('/inbound?x=1');
      expect(body.requestId).toMatch(/.+/); // added by the sidecar: the request went through it
    });

    it('redirects the app’s outbound connections to the sidecar, which routes them by Host', async () => {
      // Nothing listens on the client address; only the capture makes this answer.
      const r = await inNs(POD_NS, [
        'setpriv',
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        'curl',
        '-s',
        '-H',
        'Host: echo',
        `http://${CLIENT_IP}:9/outbound`,
      ]);
      expect(r.code, r.stderr).toBe(0);
      const body = JSON.parse(r.stdout) as {
        app: string;
        host: string;
        url: string;
        requestId: string | null;
      };
      expect(body).toMatchObject({ app: 'echo', url: '/outbound' });
      expect(body.requestId).toMatch(/.+/);
      // An unknown name gets the proxy's own 404, proving the proxy (not a direct path) answered.
      const unknown = await inNs(POD_NS, [
        'setpriv',
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        'curl',
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code} %header{x-weft-error}',
        '-H',
        'Host: nowhere',
        `http://${CLIENT_IP}:9/`,
      ]);
      expect(unknown.stdout).toBe('404 NO_ROUTE');
    });

    it('does not capture the proxy’s own traffic (root here): it reaches the client address directly', async () => {
      const r = await inNs(POD_NS, [
        'curl',
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '--max-time',
        '2',
        `http://${CLIENT_IP}:9/`,
      ]);
      expect(r.stdout).toBe('000'); // connection refused: not redirected to the sidecar
    });
  },
);
