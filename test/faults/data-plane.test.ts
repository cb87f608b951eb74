/**
 * Data-plane faults at full length (`npm run test:faults`), each on a static sidecar in front of
 * an upstream process: upstream killed mid-response, hanging, closing keep-alive connections
 * every second; overload with wrk; the access log to a blocked pipe and to /dev/full. Figures
 * printed as `[faults] {...}` JSON lines.
 */
import { describe, expect, it } from 'vitest';
import {
  logDestinationFails,
  overload,
  upstreamClosesKeepAlive,
  upstreamHangs,
  upstreamKilledMidRequest,
} from './scenarios/data-plane.ts';
import { printFigures } from './support/figures.ts';

describe('data-plane faults', () => {
  it('upstream SIGKILLed mid-response, down 2 s, restarted: failures counted by kind, retries, recovered, no leaked descriptors', async () => {
    const figures = await upstreamKilledMidRequest({ ratePerSec: 100, phaseMs: 5000, downMs: 2000 });
    printFigures('upstream-killed-mid-request', { ...figures });
    expect(figures.sidecarAlive).toBe(true);
    expect(figures.recovered).toBe(true);
    expect(figures.retries).toBeGreaterThan(0);
    expect(figures.fdsAfter).toBeLessThanOrEqual(figures.fdsBefore + 2);
  });

  it('upstream that hangs for 10 s of load: every request 504 after the 1 s route timeout, no leaked descriptors', async () => {
    const figures = await upstreamHangs({ ratePerSec: 50, phaseMs: 10_000 });
    printFigures('upstream-hangs', { ...figures });
    expect(Object.keys(figures.failuresByKind)).toEqual(['HTTP 504']);
    expect(figures.load.failed).toBe(figures.load.sent);
    expect(figures.fdsAfter).toBeLessThanOrEqual(figures.fdsBefore + 2);
  });

  it('upstream closing keep-alive connections every second, 20 s at 100 req/s: 0 failed requests, no leaked descriptors', async () => {
    const figures = await upstreamClosesKeepAlive({ ratePerSec: 100, phaseMs: 20_000 });
    printFigures('upstream-closes-keepalive', { ...figures });
    expect(figures.load.failed, JSON.stringify(figures.load)).toBe(0);
    expect(figures.fdsAfter).toBeLessThanOrEqual(figures.fdsBefore + 2);
  });

  it('overload for 40 s: 503 OVERLOADED beyond 50 active requests, /ready answers, event-loop delay and memory bounded, recovers', async () => {
    const figures = await overload({
      // 40 s: RSS climbs for about 20 s before it plateaus; the halves compare ramp+plateau with plateau.
      durationS: 40,
      connections: 800,
      maxActiveRequests: 50,
      maxEventLoopDelayMs: 500,
    });
    printFigures('overload', { ...figures });
    expect(figures.shed.active_requests + figures.shed.event_loop_delay).toBeGreaterThan(0);
    expect(figures.ready.ok).toBe(figures.ready.probes);
    expect(figures.ready.maxMs).toBeLessThan(2000);
    expect(figures.eventLoopDelayMaxMs).toBeLessThan(1000);
    // Bounded: under 512 MiB, and no growth from the first half of the run to the second beyond 25 %.
    expect(figures.rssMaxMiB).toBeLessThan(512);
    expect(figures.rssMaxSecondHalfMiB).toBeLessThan(figures.rssMaxFirstHalfMiB * 1.25);
    expect(figures.recovered.ok).toBe(figures.recovered.of);
    expect(figures.fdsAfter).toBeLessThanOrEqual(figures.fdsBefore + 2);
  });

  it.each(['blocked-pipe', '/dev/full'] as const)(
    'access log to %s for 10 s: requests unaffected, dropped lines counted',
    async (destination) => {
      const figures = await logDestinationFails({ destination, ratePerSec: 200, durationMs: 10_000 });
      printFigures(`log-${destination}`, { ...figures });
      expect(figures.sidecarAlive).toBe(true);
      expect(figures.load.failed, JSON.stringify(figures.load)).toBe(0);
      expect(figures.droppedLines).toBeGreaterThan(0);
    },
  );
});
