/**
 * Control-plane faults on the two-sidecar mTLS mesh (support/two-sidecars.ts), each under a
 * fixed-rate load through web ══mTLS══▶ api, each returning its figures:
 *
 * - `controlPlaneOutage`: SIGKILL the control plane, keep it down `outageMs`, restart it on the
 *   same data dir and ports, apply a route change, wait until every proxy runs that revision.
 * - `configChurn`: `changesPerSec` HTTPRoute changes per second for `durationMs` through the
 *   admin API, then wait until every proxy runs the last revision.
 * - `restartWithoutControlPlane`: with the control plane down, restart web on its on-disk
 *   config (serves), then with the cache file truncated or corrupt (not ready, nothing served),
 *   then bring the control plane back (ready again).
 *
 * The waits for the fault's duration are the fault itself (the outage lasts that long); every
 * other wait is an event or a deadline-bound poll.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import type { ProxyList } from '../../../control-plane/api/types.ts';
import { type MeshSidecar, pollUntil, startMeshSidecar } from '../../support/mesh.ts';
import { type Failure, FixedRateLoad, type LoadFigures } from '../support/load.ts';
import { apiRoute, type TwoSidecarMesh } from '../support/two-sidecars.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Load through web's outbound listener to `Host: api`. */
export function meshLoad(mesh: TwoSidecarMesh, ratePerSec: number): FixedRateLoad {
  return new FixedRateLoad({ url: mesh.web.outboundUrl, host: 'api', path: '/load', ratePerSec }).start();
}

/** Resolves once `weft proxy-status` shows every proxy of `mesh` synced to `revision` or newer. */
export async function waitSynced(
  mesh: TwoSidecarMesh,
  revision: number,
  timeoutMs = 30_000,
): Promise<ProxyList> {
  return pollUntil(
    `web and api to be synced to revision ${revision} in proxy-status`,
    async () => {
      const status = await mesh.cli(['proxy-status', '-o', 'json']);
      if (status.code !== 0) throw new Error(status.stderr);
      const list = JSON.parse(status.stdout) as ProxyList;
      const ids = [mesh.web.proxyId, mesh.api.proxyId];
      const synced = ids.every((id) => {
        const r = list.items.find((p) => p.proxyId === id);
        return r !== undefined && r.syncedRevision >= revision;
      });
      return synced ? list : undefined;
    },
    { timeoutMs, intervalMs: 200 },
  );
}

/** Waits until the load has sent `n` more requests (the load keeps its own schedule). */
async function loadFor(load: FixedRateLoad, n: number): Promise<void> {
  const target = load.sent + n;
  await pollUntil(`${n} more requests sent`, () => (load.sent >= target ? true : undefined), {
    timeoutMs: 60_000,
    intervalMs: 20,
  });
}

export interface OutageFigures extends LoadFigures {
  readonly outageS: number;
  readonly restartMs: number;
  /** From the route change after the restart to every proxy synced on it (proxy-status). */
  readonly resyncMs: number;
  readonly revision: number;
  readonly failures: readonly Failure[];
}

export async function controlPlaneOutage(
  mesh: TwoSidecarMesh,
  options: { outageMs: number; ratePerSec: number },
): Promise<OutageFigures> {
  const load = meshLoad(mesh, options.ratePerSec);
  try {
    await loadFor(load, options.ratePerSec);
    await mesh.cp.kill('SIGKILL');
    await sleep(options.outageMs); // the outage itself
    const restartAt = performance.now();
    await mesh.restartControlPlane();
    const restartMs = performance.now() - restartAt;
    const changeAt = performance.now();
    const revision = await mesh.apply(apiRoute(7));
    await waitSynced(mesh, revision);
    const resyncMs = performance.now() - changeAt;
    await loadFor(load, options.ratePerSec);
    const figures = await load.stop();
    return {
      ...figures,
      failures: load.failures.slice(0, 10),
      outageS: options.outageMs / 1000,
      restartMs: Math.round(restartMs),
      resyncMs: Math.round(resyncMs),
      revision,
    };
  } finally {
    await load.stop();
  }
}

export interface ChurnFigures extends LoadFigures {
  readonly changes: number;
  readonly lastRevision: number;
  /** From the last change to every proxy synced on it. */
  readonly convergeMs: number;
  readonly webVersion: string;
  readonly apiVersion: string;
}

export async function configChurn(
  mesh: TwoSidecarMesh,
  options: { durationMs: number; changesPerSec: number; ratePerSec: number },
): Promise<ChurnFigures> {
  const load = meshLoad(mesh, options.ratePerSec);
  try {
    await loadFor(load, Math.ceil(options.ratePerSec / 2));
    const total = Math.round((options.durationMs / 1000) * options.changesPerSec);
    const started = performance.now();
    let lastRevision = 0;
    // Changes on a fixed schedule (the churn rate), each one an admin API call (`POST /v1/apply`).
    for (let i = 0; i < total; i++) {
      const due = started + (i * 1000) / options.changesPerSec;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      const res = await request(`${mesh.cp.server}/v1/apply`, {
        method: 'POST',
        headers: { authorization: `Bearer ${mesh.cp.token}`, 'content-type': 'application/yaml' },
        body: apiRoute(10 + (i % 50)),
      });
      const body = (await res.body.json()) as { revision?: number; error?: string };
      if (res.statusCode !== 200) throw new Error(`apply ${i}: ${res.statusCode} ${body.error}`);
      lastRevision = body.revision as number;
    }
    const lastAt = performance.now();
    await waitSynced(mesh, lastRevision);
    const convergeMs = performance.now() - lastAt;
    const figures = await load.stop();
    const [webVersion, apiVersion] = await Promise.all([mesh.web, mesh.api].map(versionOf));
    return {
      ...figures,
      changes: total,
      lastRevision,
      convergeMs: Math.round(convergeMs),
      webVersion: webVersion as string,
      apiVersion: apiVersion as string,
    };
  } finally {
    await load.stop();
  }
}

async function versionOf(s: MeshSidecar): Promise<string> {
  return (await s.configDump()).version;
}

async function readyStatus(s: MeshSidecar): Promise<number> {
  const res = await request(`${s.adminUrl}/ready`);
  await res.body.dump();
  return res.statusCode;
}

/** A GET through `s`'s outbound listener; the status, or the socket error code. */
async function probe(s: MeshSidecar): Promise<number | string> {
  try {
    const res = await request(`${s.outboundUrl}/probe`, { headers: { host: 'api' }, headersTimeout: 3000 });
    await res.body.dump();
    return res.statusCode;
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

export interface RestartFigures {
  readonly cachedVersion: string;
  readonly servedFromCache: LoadFigures;
  /** For each broken cache: /ready status, what the outbound port answered, the version held. */
  readonly broken: Record<string, { ready: number; outbound: number | string; version: string; log: string }>;
  readonly recoveredMs: number;
}

/**
 * Restarts web three times with the control plane down: on its cache (serves), on a truncated
 * cache, on a cache with a list missing; then restarts the control plane. Replaces `mesh.web`'s
 * process; the caller's mesh keeps the last one (returned) for cleanup.
 */
export async function restartWithoutControlPlane(
  mesh: TwoSidecarMesh,
  register: (s: MeshSidecar) => void,
  options: { brokenCases?: readonly ('truncated' | 'routes missing' | 'wrong field type')[] } = {},
): Promise<RestartFigures> {
  const cacheFile = join(
    mesh.web.options.dataDir,
    `${mesh.web.proxyId.replace(/[^A-Za-z0-9._-]/g, '_')}.snapshot.json`,
  );
  const good = await readFile(cacheFile, 'utf8');
  const cachedVersion = (JSON.parse(good) as { version: string }).version;
  await mesh.cp.kill('SIGKILL');
  let web = mesh.web;
  await web.stop(10_000);

  // 1. The whole cache: serves at once.
  web = await startMeshSidecar({ ...mesh.web.options, waitReady: true });
  register(web);
  const load = new FixedRateLoad({
    url: web.outboundUrl,
    host: 'api',
    path: '/cached',
    ratePerSec: 50,
  }).start();
  await pollUntil('50 requests from the cached config', () => (load.sent >= 50 ? true : undefined), {
    timeoutMs: 20_000,
  });
  const servedFromCache = await load.stop();
  const served = await versionOf(web);
  if (served !== cachedVersion) throw new Error(`served ${served}, cached ${cachedVersion}`);
  await web.stop(10_000);

  // 2. Broken caches: never ready, never a half config.
  const broken: RestartFigures['broken'] = {};
  const doc = JSON.parse(good) as { version: string; config: Record<string, unknown> };
  const { routes: _routes, ...withoutRoutes } = doc.config;
  const cases: Record<string, string> = {
    truncated: good.slice(0, Math.floor(good.length / 2)),
    'routes missing': JSON.stringify({ version: doc.version, config: withoutRoutes }),
    'wrong field type': JSON.stringify({
      version: doc.version,
      config: { ...doc.config, listeners: [{ name: 7 }] },
    }),
  };
  const chosen = options.brokenCases ?? (Object.keys(cases) as (keyof typeof cases)[]);
  for (const [i, name] of chosen.entries()) {
    const text = cases[name] as string;
    await writeFile(cacheFile, text);
    web = await startMeshSidecar({ ...mesh.web.options, waitReady: false });
    register(web);
    const skipped = await web.process.waitForLog(
      '"not serving the cached config"',
      (e) => e.msg === 'not serving the cached config',
    );
    broken[name] = {
      ready: await readyStatus(web),
      outbound: await probe(web),
      version: await versionOf(web),
      log: String((skipped.err as { message?: string } | undefined)?.message ?? '').slice(0, 200),
    };
    if (i < chosen.length - 1) await web.stop(10_000);
  }

  // 3. The control plane back: the last broken-cache sidecar turns ready from the stream.
  const backAt = performance.now();
  await mesh.restartControlPlane();
  await web.ready(30_000);
  const recoveredMs = performance.now() - backAt;
  (mesh as { web: MeshSidecar }).web = web;
  return { cachedVersion, servedFromCache, broken, recoveredMs: Math.round(recoveredMs) };
}
