/**
 * Soak (`npm run test:soak`): a steady 100 req/s for 10 minutes (`WEFT_SOAK_MINUTES` to change)
 * through web ══mTLS══▶ api (two dynamic sidecars and the control plane, real processes on
 * loopback). After a 1-minute warm-up, both sidecars' RSS and open descriptors are sampled every
 * 10 s. Asserted: 0 failed requests, RSS growth < 10 % from the end of the warm-up to the end,
 * descriptors at the end within 2 of their count after the warm-up. The gateway is not in the
 * path yet (see docs/reliability.md).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pollUntil } from '../support/mesh.ts';
import { fdCount, printFigures, rssMiB } from './support/figures.ts';
import { FixedRateLoad } from './support/load.ts';
import { startTwoSidecarMesh, type TwoSidecarMesh } from './support/two-sidecars.ts';

const MINUTES = Number(process.env.WEFT_SOAK_MINUTES ?? 10);
const RATE = 100;
const WARMUP_MS = 60_000;
const SAMPLE_MS = 10_000;

interface Sample {
  readonly atS: number;
  readonly web: { rssMiB: number; fds: number };
  readonly api: { rssMiB: number; fds: number };
}

describe('soak', () => {
  let mesh: TwoSidecarMesh;
  beforeAll(async () => {
    mesh = await startTwoSidecarMesh();
  });
  afterAll(async () => {
    await mesh?.stop();
  });

  it(`${RATE} req/s for ${MINUTES} min through two mTLS sidecars: 0 failed, RSS growth < 10 % after warm-up, no descriptor growth`, async () => {
    const load = new FixedRateLoad({
      url: mesh.web.outboundUrl,
      host: 'api',
      path: '/soak',
      ratePerSec: RATE,
    }).start();
    const started = performance.now();
    const samples: Sample[] = [];
    const sample = async (): Promise<Sample> => {
      const [webRss, apiRss, webFds, apiFds] = await Promise.all([
        rssMiB(mesh.web.process.pid),
        rssMiB(mesh.api.process.pid),
        fdCount(mesh.web.process.pid),
        fdCount(mesh.api.process.pid),
      ]);
      return {
        atS: Math.round((performance.now() - started) / 1000),
        web: { rssMiB: webRss, fds: webFds.fds },
        api: { rssMiB: apiRss, fds: apiFds.fds },
      };
    };
    const endAt = started + MINUTES * 60_000;
    let next = started + WARMUP_MS;
    // The schedule of samples (every 10 s after the warm-up) is the measurement, not a synchronisation.
    while (next <= endAt) {
      await pollUntil('the next sample time', () => (performance.now() >= next ? true : undefined), {
        timeoutMs: SAMPLE_MS * 2 + WARMUP_MS,
        intervalMs: 200,
      });
      samples.push(await sample());
      next += SAMPLE_MS;
    }
    const figures = await load.stop();
    const first = samples[0] as Sample;
    const last = samples.at(-1) as Sample;
    const growth = (a: number, b: number): number => Math.round(((b - a) / a) * 1000) / 10;
    const result = {
      minutes: MINUTES,
      rate: RATE,
      load: figures,
      afterWarmup: first,
      end: last,
      webRssGrowthPct: growth(first.web.rssMiB, last.web.rssMiB),
      apiRssGrowthPct: growth(first.api.rssMiB, last.api.rssMiB),
      webRssMaxMiB: Math.max(...samples.map((s) => s.web.rssMiB)),
      apiRssMaxMiB: Math.max(...samples.map((s) => s.api.rssMiB)),
      samples: samples.length,
    };
    printFigures('soak', result);
    expect(figures.failed, JSON.stringify(load.failures.slice(0, 10))).toBe(0);
    expect(result.webRssGrowthPct).toBeLessThan(10);
    expect(result.apiRssGrowthPct).toBeLessThan(10);
    expect(last.web.fds).toBeLessThanOrEqual(first.web.fds + 2);
    expect(last.api.fds).toBeLessThanOrEqual(first.api.fds + 2);
  });
});
