/**
 * Fault injection (sidecar/proxy/http/fault.ts) on fake timers and a seeded random source: the
 * drawn shares, the delay on the shared coarse timer, the abort's local reply, a client leaving
 * during the delay; and the route compiler's checks of `Route.fault` (router/actions.ts).
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { FaultInjection } from '../../../sidecar/proxy/config/types.ts';
import { RequestContext } from '../../../sidecar/proxy/http/context.ts';
import { hits, injectFault } from '../../../sidecar/proxy/http/fault.ts';
import { compileRouteTable } from '../../../sidecar/proxy/router/compile.ts';
import type { CompiledFault } from '../../../sidecar/proxy/router/types.ts';
import { requestEnd } from '../../../sidecar/proxy/telemetry/channels.ts';
import { TICK_MS } from '../../../sidecar/proxy/timers.ts';
import { rng } from '../translate/helpers.ts';

/** The parts of a ServerResponse a local reply touches, recording what was written. */
class FakeResponse extends EventEmitter {
  headersSent = false;
  writableFinished = false;
  destroyed = false;
  status = 0;
  headers: Record<string, unknown> = {};
  body = '';
  writeHead(status: number, headers: Record<string, unknown>): this {
    this.status = status;
    this.headers = headers;
    this.headersSent = true;
    return this;
  }
  end(body?: string): this {
    this.body = body ?? '';
    this.writableFinished = true;
    return this;
  }
  destroy(): this {
    this.destroyed = true;
    return this;
  }
}

function context(method = 'GET'): { ctx: RequestContext; res: FakeResponse } {
  const res = new FakeResponse();
  const req = { method, headers: {} } as unknown as IncomingMessage;
  const listener = {
    name: 'outbound',
    direction: 'OUTBOUND',
    port: 15001,
    xffNumTrustedHops: 0,
    maxRequestUrlBytes: 8192,
  } as const;
  return { ctx: new RequestContext(req, res as unknown as ServerResponse, listener, 0), res };
}

const fault = (f: Partial<CompiledFault>): CompiledFault => ({
  delayMs: 0,
  delayPercent: 100,
  abortStatus: 0,
  abortPercent: 100,
  ...f,
});
const never = (): number => 0.999999;
const always = (): number => 0;

describe('fault injection', () => {
  beforeAll(() => {
    vi.useFakeTimers();
  });
  afterAll(() => {
    vi.advanceTimersByTime(TICK_MS * 2); // lets the shared interval stop itself
    vi.useRealTimers();
  });

  it('draws a percent as a share of the random source', () => {
    const random = rng(7);
    let n = 0;
    for (let i = 0; i < 10_000; i++) if (hits(25, random)) n++;
    expect(n).toBeGreaterThan(2300);
    expect(n).toBeLessThan(2700);
    expect(hits(0, always)).toBe(false);
    expect(hits(100, never)).toBe(true);
  });

  it('leaves a request alone when neither share hits', () => {
    const { ctx, res } = context();
    const resume = vi.fn();
    expect(
      injectFault(
        ctx,
        fault({ delayMs: 100, abortStatus: 503, delayPercent: 50, abortPercent: 50 }),
        never,
        resume,
      ),
    ).toBe(false);
    expect(resume).not.toHaveBeenCalled();
    expect(res.headersSent).toBe(false);
  });

  it('aborts with the configured status, x-weft-error FAULT_INJECTED and the response flag', () => {
    const { ctx, res } = context();
    const ended: unknown[] = [];
    const onEnd = (m: unknown): void => void ended.push(m);
    requestEnd.subscribe(onEnd);
    try {
      expect(injectFault(ctx, fault({ abortStatus: 418 }), always, vi.fn())).toBe(true);
    } finally {
      requestEnd.unsubscribe(onEnd);
    }
    expect(res.status).toBe(418);
    expect(res.headers['x-weft-error']).toBe('FAULT_INJECTED');
    expect(res.body).toBe('the route aborted the request (fault injection)\n');
    expect(ctx.flags).toBe('FAULT_INJECTED');
    expect(ended).toEqual([ctx]);
  });

  it('answers an abort with 204 without a body', () => {
    const { ctx, res } = context();
    injectFault(ctx, fault({ abortStatus: 204 }), always, vi.fn());
    expect(res.status).toBe(204);
    expect(res.body).toBe('');
  });

  it('delays on the shared coarse timer, then resumes the request', () => {
    const { ctx, res } = context();
    const resume = vi.fn();
    expect(injectFault(ctx, fault({ delayMs: 500 }), always, resume)).toBe(true);
    vi.advanceTimersByTime(450);
    expect(resume).not.toHaveBeenCalled();
    vi.advanceTimersByTime(TICK_MS + 50);
    expect(resume).toHaveBeenCalledTimes(1);
    expect(res.headersSent).toBe(false);
    expect(res.listenerCount('close')).toBe(0);
  });

  it('aborts after the delay when both shares hit (Envoy order)', () => {
    const { ctx, res } = context();
    const resume = vi.fn();
    injectFault(ctx, fault({ delayMs: 300, abortStatus: 503 }), always, resume);
    expect(res.headersSent).toBe(false);
    vi.advanceTimersByTime(300 + TICK_MS);
    expect(res.status).toBe(503);
    expect(resume).not.toHaveBeenCalled();
  });

  it('draws the delay and the abort independently', () => {
    const { ctx, res } = context();
    const resume = vi.fn();
    const draws = [0.9, 0.1]; // delay misses (50 %), abort hits (50 %)
    injectFault(
      ctx,
      fault({ delayMs: 300, delayPercent: 50, abortStatus: 500, abortPercent: 50 }),
      () => draws.shift() ?? 0,
      resume,
    );
    expect(res.status).toBe(500);
  });

  it('cancels the delay when the client leaves: never forwarded, flagged DOWNSTREAM_DISCONNECT', () => {
    const { ctx, res } = context();
    const resume = vi.fn();
    injectFault(ctx, fault({ delayMs: 1000 }), always, resume);
    res.emit('close');
    vi.advanceTimersByTime(2000);
    expect(resume).not.toHaveBeenCalled();
    expect(ctx.flags).toBe('DOWNSTREAM_DISCONNECT');
    expect(res.destroyed).toBe(true);
  });

  it('delays about the configured share of requests (seeded)', () => {
    const random = rng(42);
    let delayed = 0;
    for (let i = 0; i < 2000; i++) {
      const { ctx } = context();
      if (injectFault(ctx, fault({ delayMs: 10, delayPercent: 10 }), random, () => undefined)) delayed++;
    }
    vi.advanceTimersByTime(100);
    expect(delayed).toBeGreaterThan(150);
    expect(delayed).toBeLessThan(250);
  });
});

describe('Route.fault compilation', () => {
  const compile = (f: FaultInjection) =>
    compileRouteTable({
      name: 'r',
      virtualHosts: [{ name: 'v', routes: [{ name: 'f', route: { clusters: [{ name: 'c' }] }, fault: f }] }],
    }).match({ host: 'x', path: '/', query: '', method: 'GET', headers: {} });

  it('fills absent percents with 100 and keeps explicit ones', () => {
    expect(compile({ delayMs: 200 })?.fault).toEqual({
      delayMs: 200,
      delayPercent: 100,
      abortStatus: 0,
      abortPercent: 100,
    });
    expect(compile({ abortStatus: 503, abortPercent: 0 })?.fault).toEqual({
      delayMs: 0,
      delayPercent: 100,
      abortStatus: 503,
      abortPercent: 0,
    });
  });

  it('compiles a fault that injects nothing to none', () => {
    expect(compile({})?.fault).toBeUndefined();
    expect(compile({ delayPercent: 50 })?.fault).toBeUndefined();
  });

  it.each([
    [{ delayMs: 10, delayPercent: 101 }, 'fault.delayPercent: must be a number in [0, 100], got 101'],
    [{ delayMs: 10, delayPercent: -1 }, 'fault.delayPercent: must be a number in [0, 100], got -1'],
    [
      { abortStatus: 503, abortPercent: Number.NaN },
      'fault.abortPercent: must be a number in [0, 100], got NaN',
    ],
    [{ abortStatus: 199 }, 'fault.abortStatus: must be an integer in [200, 599], got 199'],
    [{ abortStatus: 600 }, 'fault.abortStatus: must be an integer in [200, 599], got 600'],
    [{ delayMs: 1.5 }, 'fault.delayMs: must be a non-negative integer, got 1.5'],
  ])('rejects %j', (f, message) => {
    expect(() => compile(f)).toThrow(`route config "r": virtual host "v", route "f": ${message}`);
  });
});
