/**
 * The fast subset of the fault-injection suite (test/faults/, `npm run test:faults`), in the
 * default `npm test`: the same scenarios with shorter faults (control plane down 5 s instead of
 * 60 s, churn 10 s instead of 60 s, one broken cache instead of three, overload 5 s, the access
 * log blocked 3 s); the upstream faults, /dev/full and etcd run in test:faults only. Each prints
 * its figures as one JSON line (`[faults] {...}`) and asserts them. Real processes on loopback;
 * every process is stopped by pid in `afterAll`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  configChurn,
  controlPlaneOutage,
  restartWithoutControlPlane,
} from '../faults/scenarios/control-plane.ts';
import { logDestinationFails, overload } from '../faults/scenarios/data-plane.ts';
import { printFigures } from '../faults/support/figures.ts';
import { startTwoSidecarMesh, type TwoSidecarMesh } from '../faults/support/two-sidecars.ts';
import { type MeshSidecar, stopAll } from '../support/mesh.ts';

describe('control-plane faults on a two-sidecar mTLS mesh (fast subset)', () => {
  let mesh: TwoSidecarMesh;
  const extra: MeshSidecar[] = [];
  beforeAll(async () => {
    mesh = await startTwoSidecarMesh();
  });
  afterAll(async () => {
    await stopAll(extra);
    await mesh?.stop();
  });

  it('control plane SIGKILLed for 5 s and restarted: 0 failed requests, both proxies resync to a change made after the restart', async () => {
    const figures = await controlPlaneOutage(mesh, { outageMs: 5000, ratePerSec: 50 });
    printFigures('control-plane-outage-5s', { ...figures });
    if (figures.failed > 0) console.log(JSON.stringify(figures.failures ?? []));
    expect(figures.failed, JSON.stringify(figures)).toBe(0);
    expect(figures.sent).toBeGreaterThan(250);
  });

  it('10 route changes/s for 10 s under load: 0 failed requests, every proxy ends on the last revision', async () => {
    const figures = await configChurn(mesh, { durationMs: 10_000, changesPerSec: 10, ratePerSec: 50 });
    printFigures('config-churn-10s', { ...figures });
    expect(figures.failed, JSON.stringify(figures)).toBe(0);
    expect(figures.changes).toBe(100);
    expect(Number(figures.webVersion)).toBeGreaterThanOrEqual(figures.lastRevision);
    expect(Number(figures.apiVersion)).toBeGreaterThanOrEqual(figures.lastRevision);
  });

  it('sidecar restarted with the control plane down: serves its on-disk config; a truncated or corrupt cache: not ready, serves nothing', async () => {
    const figures = await restartWithoutControlPlane(mesh, (s) => extra.push(s), {
      brokenCases: ['truncated'],
    });
    printFigures('sidecar-restart-cp-down', { ...figures });
    expect(figures.servedFromCache.failed, JSON.stringify(figures.servedFromCache)).toBe(0);
    for (const [name, b] of Object.entries(figures.broken)) {
      expect(b.ready, name).toBe(503);
      expect(b.version, name).toBe('');
      expect(b.outbound, name).toBe('ECONNREFUSED');
    }
  });
});

describe('data-plane faults on a static sidecar (fast subset)', () => {
  it('overload: wrk far above what the listener admits → 503 OVERLOADED, /ready answers, memory bounded, recovers', async () => {
    const figures = await overload({
      durationS: 5,
      connections: 400,
      maxActiveRequests: 50,
      maxEventLoopDelayMs: 500,
    });
    printFigures('overload', { ...figures });
    expect(figures.shed.active_requests + figures.shed.event_loop_delay).toBeGreaterThan(0);
    expect(figures.wrk.non2xx).toBeGreaterThan(0);
    expect(figures.ready.ok).toBe(figures.ready.probes);
    expect(figures.ready.maxMs).toBeLessThan(2000);
    expect(figures.rssMaxMiB).toBeLessThan(512);
    expect(figures.recovered.ok).toBe(figures.recovered.of);
  });

  it('access log to a pipe nobody reads: requests unaffected, dropped lines counted', async () => {
    const figures = await logDestinationFails({
      destination: 'blocked-pipe',
      ratePerSec: 200,
      durationMs: 3000,
    });
    printFigures('log-blocked-pipe', { ...figures });
    expect(figures.sidecarAlive).toBe(true);
    expect(figures.load.failed, JSON.stringify(figures.load)).toBe(0);
    expect(figures.droppedLines).toBeGreaterThan(0);
  });
});
