/**
 * Control-plane faults at full length (`npm run test:faults`): the control plane SIGKILLed for
 * 60 s, 10 route changes/s for 60 s, and a sidecar restarted with the control plane down on its
 * cache, a truncated cache, a cache without a list and a cache with a field of the wrong type.
 * Two sidecars with mTLS under 50 req/s; figures printed as `[faults] {...}` JSON lines.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MeshSidecar, stopAll } from '../support/mesh.ts';
import { configChurn, controlPlaneOutage, restartWithoutControlPlane } from './scenarios/control-plane.ts';
import { printFigures } from './support/figures.ts';
import { startTwoSidecarMesh, type TwoSidecarMesh } from './support/two-sidecars.ts';

describe('control-plane faults on a two-sidecar mTLS mesh', () => {
  let mesh: TwoSidecarMesh;
  const extra: MeshSidecar[] = [];
  beforeAll(async () => {
    mesh = await startTwoSidecarMesh();
  });
  afterAll(async () => {
    await stopAll(extra);
    await mesh?.stop();
  });

  it('control plane SIGKILLed for 60 s and restarted: 0 failed requests, both proxies resync to a change made after the restart', async () => {
    const figures = await controlPlaneOutage(mesh, { outageMs: 60_000, ratePerSec: 50 });
    printFigures('control-plane-outage-60s', { ...figures });
    expect(figures.failed, JSON.stringify(figures)).toBe(0);
    expect(figures.sent).toBeGreaterThan(3000);
  });

  it('10 route changes/s for 60 s under load: 0 failed requests, every proxy ends on the last revision', async () => {
    const figures = await configChurn(mesh, { durationMs: 60_000, changesPerSec: 10, ratePerSec: 50 });
    printFigures('config-churn-60s', { ...figures });
    expect(figures.failed, JSON.stringify(figures)).toBe(0);
    expect(figures.changes).toBe(600);
    expect(Number(figures.webVersion)).toBeGreaterThanOrEqual(figures.lastRevision);
    expect(Number(figures.apiVersion)).toBeGreaterThanOrEqual(figures.lastRevision);
  });

  it('sidecar restarted with the control plane down: serves its on-disk config; truncated, incomplete or mistyped cache: not ready, serves nothing, until the control plane is back', async () => {
    const figures = await restartWithoutControlPlane(mesh, (s) => extra.push(s));
    printFigures('sidecar-restart-cp-down', { ...figures });
    expect(figures.servedFromCache.failed, JSON.stringify(figures.servedFromCache)).toBe(0);
    expect(Object.keys(figures.broken)).toHaveLength(3);
    for (const [name, b] of Object.entries(figures.broken)) {
      expect(b.ready, name).toBe(503);
      expect(b.version, name).toBe('');
      expect(b.outbound, name).toBe('ECONNREFUSED');
      expect(b.log, name).toMatch(/is corrupt/);
    }
  });
});
