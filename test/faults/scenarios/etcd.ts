/**
 * The control plane on a 3-member etcd cluster (test/support/etcd.ts `startEtcdCluster`), with
 * the two-sidecar mTLS mesh under load:
 *
 * - `leaderKilled`: SIGKILL the etcd leader; `weft apply` is retried until it succeeds. Figures:
 *   how long config writes were unavailable, data-plane failures, proxies synced after.
 * - `quorumLost`: SIGKILL a second member (1 of 3 left). Figures: whether the control plane is
 *   still up, what reads (`weft get`) and writes (`weft apply`) answer, the log line and the
 *   metric that say so, data-plane failures.
 * - `forcedInvalidSnapshot` writes an endpoint registration straight into etcd (bypassing the
 *   discovery server's checks) that yields a config the proxy rejects: NACK, last good config kept and
 *   serving, reason in `weft proxy-status`.
 */
import { Etcd3 } from 'etcd3';
import { request } from 'undici';
import type { ProxyList } from '../../../control-plane/api/types.ts';
import { endpointKey } from '../../../control-plane/store/keys.ts';
import type { RunningEtcdCluster } from '../../support/etcd.ts';
import { pollUntil } from '../../support/mesh.ts';
import type { LoadFigures } from '../support/load.ts';
import { apiRoute, type TwoSidecarMesh } from '../support/two-sidecars.ts';
import { meshLoad, waitSynced } from './control-plane.ts';

async function loadFor(load: { sent: number }, n: number): Promise<void> {
  const target = load.sent + n;
  await pollUntil(`${n} more requests`, () => (load.sent >= target ? true : undefined), {
    timeoutMs: 60_000,
    intervalMs: 20,
  });
}

export interface LeaderKilledFigures extends LoadFigures {
  readonly leader: string;
  /** From the SIGKILL to the first `weft apply` that succeeded. */
  readonly writesResumedMs: number;
  readonly applyAttempts: number;
  readonly revision: number;
}

export async function leaderKilled(
  mesh: TwoSidecarMesh,
  etcd: RunningEtcdCluster,
  options: { ratePerSec: number },
): Promise<LeaderKilledFigures> {
  const load = meshLoad(mesh, options.ratePerSec);
  try {
    await loadFor(load, options.ratePerSec);
    const leader = await etcd.leader();
    const killedAt = performance.now();
    await leader.kill();
    let attempts = 0;
    let revision = 0;
    await pollUntil(
      '`weft apply` to succeed after the leader was killed',
      async () => {
        attempts++;
        try {
          revision = await mesh.apply(apiRoute(20 + attempts));
          return true;
        } catch {
          return undefined;
        }
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    const writesResumedMs = Math.round(performance.now() - killedAt);
    await waitSynced(mesh, revision);
    await loadFor(load, options.ratePerSec);
    const figures = await load.stop();
    return { ...figures, leader: leader.name, writesResumedMs, applyAttempts: attempts, revision };
  } finally {
    await load.stop();
  }
}

export interface QuorumLostFigures extends LoadFigures {
  readonly controlPlaneUp: boolean;
  readonly read: { code: number | null; items: number; stderr: string };
  readonly write: { code: number | null; stderr: string };
  readonly apiWrite: { status: number; error: string };
  readonly logLine: string | undefined;
  readonly storeUnavailableMetric: number;
  readonly proxiesListed: number;
  readonly proxyStatusError: string;
}

export async function quorumLost(
  mesh: TwoSidecarMesh,
  etcd: RunningEtcdCluster,
  options: { ratePerSec: number; holdMs: number },
): Promise<QuorumLostFigures> {
  const load = meshLoad(mesh, options.ratePerSec);
  try {
    await loadFor(load, options.ratePerSec);
    const running = etcd.members.filter((m) => m.running);
    // Leave one member: no quorum in a cluster of 3.
    for (const m of running.slice(0, running.length - 1)) await m.kill();
    await loadFor(load, Math.round((options.ratePerSec * options.holdMs) / 1000));
    const read = await mesh.cli(['get', 'httproutes', '-o', 'json']);
    let items = -1;
    try {
      items = (JSON.parse(read.stdout) as { items: unknown[] }).items.length;
    } catch {
      // not JSON: the error is in stderr
    }
    const write = await mesh.cli(['apply', '-f', await writeRoute(mesh)]);
    const res = await request(`${mesh.cp.server}/v1/apply`, {
      method: 'POST',
      headers: { authorization: `Bearer ${mesh.cp.token}`, 'content-type': 'application/yaml' },
      body: apiRoute(41),
      headersTimeout: 30_000,
    });
    const body = (await res.body.json().catch(() => ({}))) as { error?: string };
    const status = await mesh.cli(['proxy-status', '-o', 'json']);
    let proxiesListed = -1;
    try {
      proxiesListed = (JSON.parse(status.stdout) as ProxyList).items.length;
    } catch {
      // reported as -1
    }
    const metricsRes = await request(`http://127.0.0.1:${mesh.cp.monitoringPort}/metrics`);
    const metricsText = await metricsRes.body.text();
    const metricLine = metricsText.split('\n').find((l) => l.startsWith('weft_cp_store_available '));
    await loadFor(load, options.ratePerSec);
    const figures = await load.stop();
    const logEntry = mesh.cp.process.logs.find((e) => /read-only|store unavailable/i.test(String(e.msg)));
    return {
      ...figures,
      controlPlaneUp: mesh.cp.process.running,
      read: { code: read.code, items, stderr: read.stderr.slice(0, 300) },
      write: { code: write.code, stderr: write.stderr.slice(0, 300) },
      apiWrite: { status: res.statusCode, error: String(body.error ?? '').slice(0, 300) },
      logLine: logEntry === undefined ? undefined : JSON.stringify(logEntry).slice(0, 400),
      storeUnavailableMetric: metricLine === undefined ? -1 : Number(metricLine.split(' ')[1]),
      proxiesListed,
      proxyStatusError: status.stderr.slice(0, 300),
    };
  } finally {
    await load.stop();
  }
}

async function writeRoute(mesh: TwoSidecarMesh): Promise<string> {
  const { writeFile } = await import('node:fs/promises');
  const file = `${mesh.root}/quorum-write.yaml`;
  await writeFile(file, apiRoute(40));
  return file;
}

export interface InvalidSnapshotFigures extends LoadFigures {
  readonly nackReason: string;
  readonly webVersionBefore: string;
  readonly webVersionAfter: string;
  /** The version web NACKed (from the reason: `invalid config version N`). */
  readonly nackedVersion: string;
}

/** Writes an api endpoint with port 70000 straight into etcd, under load through web. */
export async function forcedInvalidSnapshot(
  mesh: TwoSidecarMesh,
  etcd: RunningEtcdCluster,
  options: { ratePerSec: number },
): Promise<InvalidSnapshotFigures> {
  const webVersionBefore = (await mesh.web.configDump()).version;
  const load = meshLoad(mesh, options.ratePerSec);
  const client = new Etcd3({ hosts: etcd.endpoints });
  try {
    await loadFor(load, options.ratePerSec);
    // An endpoint registration no proxy can use (port 70000), written where sidecars register.
    const bad = {
      proxyId: 'forced-bad',
      namespace: 'default',
      address: '127.0.0.1',
      port: 70000,
      labels: { app: 'api', version: 'v1' },
      weight: 1,
      draining: false,
    };
    await client.put(endpointKey('default', 'forced-bad')).value(JSON.stringify(bad));
    const nacked = await pollUntil(
      'web to NACK the forced snapshot in proxy-status',
      async () => {
        const status = await mesh.cli(['proxy-status', '-o', 'json']);
        if (status.code !== 0) throw new Error(status.stderr);
        const r = (JSON.parse(status.stdout) as ProxyList).items.find((p) => p.proxyId === mesh.web.proxyId);
        return r?.lastNack !== undefined ? r : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 200 },
    );
    await loadFor(load, options.ratePerSec);
    const figures = await load.stop();
    const webVersionAfter = (await mesh.web.configDump()).version;
    const nackReason = nacked.lastNack?.reason ?? '';
    const nackedVersion = /invalid config version (\d+)/.exec(nackReason)?.[1] ?? '';
    return { ...figures, nackReason, webVersionBefore, webVersionAfter, nackedVersion };
  } finally {
    await load.stop();
    await client.delete().key(endpointKey('default', 'forced-bad'));
    client.close();
  }
}
