/**
 * The control plane on a 3-member etcd cluster on loopback (see scenarios/etcd.ts): a forced
 * invalid snapshot, the leader killed, then quorum lost. Figures printed as JSON lines.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningEtcdCluster, startEtcdCluster } from '../support/etcd.ts';
import { forcedInvalidSnapshot, leaderKilled, quorumLost } from './scenarios/etcd.ts';
import { printFigures } from './support/figures.ts';
import { startTwoSidecarMesh, type TwoSidecarMesh } from './support/two-sidecars.ts';

describe('control plane on a 3-member etcd cluster', () => {
  let etcd: RunningEtcdCluster;
  let mesh: TwoSidecarMesh;
  beforeAll(async () => {
    etcd = await startEtcdCluster(3);
    mesh = await startTwoSidecarMesh({ controlPlaneArgs: ['--etcd', etcd.endpoints.join(',')] });
  }, 90_000);
  afterAll(async () => {
    await mesh?.stop();
    await etcd?.stop();
  });

  it('an endpoint written straight into etcd that the proxy cannot apply: NACK with the reason in proxy-status, last good config kept and serving', async () => {
    const figures = await forcedInvalidSnapshot(mesh, etcd, { ratePerSec: 50 });
    printFigures('forced-invalid-snapshot', { ...figures });
    expect(figures.failed, JSON.stringify(figures)).toBe(0);
    expect(figures.nackReason).toMatch(/70000|port/i);
    // Last good kept: web runs a version from before the NACKed one (a valid push may land between
    // the first reading and the bad write; every push after it carries the bad endpoint).
    expect(figures.nackedVersion).not.toBe('');
    expect(Number(figures.webVersionAfter)).toBeLessThan(Number(figures.nackedVersion));
    expect(Number(figures.webVersionAfter)).toBeGreaterThanOrEqual(Number(figures.webVersionBefore));
  });

  it('etcd leader SIGKILLed: `weft apply` succeeds again within 5 s, 0 data-plane errors', async () => {
    const figures = await leaderKilled(mesh, etcd, { ratePerSec: 50 });
    printFigures('etcd-leader-killed', { ...figures });
    expect(figures.failed, JSON.stringify(figures)).toBe(0);
    expect(figures.writesResumedMs).toBeLessThan(5000);
  });

  it('quorum lost (2 of 3 members killed): control plane up and read-only, says so; data plane unaffected', async () => {
    const figures = await quorumLost(mesh, etcd, { ratePerSec: 50, holdMs: 3000 });
    printFigures('etcd-quorum-lost', { ...figures });
    expect(figures.failed, JSON.stringify(figures)).toBe(0);
    expect(figures.controlPlaneUp).toBe(true);
    expect(figures.read.code, figures.read.stderr).toBe(0);
    expect(figures.read.items).toBeGreaterThanOrEqual(1);
    expect(figures.proxiesListed, figures.proxyStatusError).toBe(2);
    expect(figures.write.code).not.toBe(0);
    expect(figures.apiWrite.status).toBe(503);
    expect(figures.apiWrite.error).toMatch(/read-only|quorum|etcd/i);
    expect(figures.logLine).toBeDefined();
    expect(figures.storeUnavailableMetric).toBe(0);
  });
});
