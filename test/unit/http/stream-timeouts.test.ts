/**
 * stream-timeouts.ts in isolation: the sweep's decisions on HTTP/1.1 requests whose connection byte
 * counters the test moves (fake timers; the real sockets, HTTP/2 and the replies on the wire are in
 * test/integration/slow-clients.test.ts and the bad-input corpus), the GATEWAY default and the config
 * check that `requestTimeoutMs` is not below `requestHeadersTimeoutMs`.
 */
import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ProxyConfig } from '../../../sidecar/proxy/config/model.ts';
import type { Listener } from '../../../sidecar/proxy/config/types.ts';
import { checkConsistency } from '../../../sidecar/proxy/config/validate.ts';
import type { ErrorKind } from '../../../sidecar/proxy/errors.ts';
import {
  type DownstreamRequest,
  type DownstreamResponse,
  RequestContext,
} from '../../../sidecar/proxy/http/context.ts';
import {
  checkStreamTimeouts,
  directionLimitDefaults,
  GATEWAY_REQUEST_TIMEOUT_MS,
  StreamTimeouts,
} from '../../../sidecar/proxy/http/stream-timeouts.ts';

/** A request on a fake HTTP/1.1 connection whose counters the test moves, with a recording exchange. */
function request(opts: { headersSent?: boolean; complete?: boolean } = {}) {
  const socket = { bytesRead: 100, bytesWritten: 0 };
  const res = Object.assign(new EventEmitter(), {
    headersSent: opts.headersSent ?? false,
    shouldKeepAlive: true,
    destroyed: 0,
    destroy() {
      this.destroyed++;
    },
  });
  const req = { headers: {}, rawHeaders: [], httpVersion: '1.1', socket, complete: opts.complete ?? false };
  const ctx = new RequestContext(
    req as unknown as DownstreamRequest,
    res as unknown as DownstreamResponse,
    { name: 'l', direction: 'OUTBOUND', port: 1, xffNumTrustedHops: 0 },
    0,
  );
  const failed: ErrorKind[] = [];
  ctx.exchange = { fail: (kind) => failed.push(kind) };
  return { ctx, socket, res, failed };
}

describe('StreamTimeouts (HTTP/1.1, fake timers)', () => {
  let timeouts: StreamTimeouts;
  beforeEach(() => {
    vi.useFakeTimers();
    timeouts = new StreamTimeouts({ streamIdleTimeoutMs: 1000, requestTimeoutMs: 0 });
  });
  afterEach(() => {
    timeouts.close();
    vi.useRealTimers();
  });

  it('fails an idle request with STREAM_IDLE_TIMEOUT after the timeout, never before', () => {
    const r = request();
    timeouts.watch(r.ctx);
    vi.advanceTimersByTime(950);
    expect(r.failed).toEqual([]);
    vi.advanceTimersByTime(1000);
    expect(r.failed).toEqual(['STREAM_IDLE_TIMEOUT']);
    expect(r.res.shouldKeepAlive, 'the connection closes after the 408').toBe(false);
    expect(timeouts.size).toBe(0);
  });

  it('leaves a request alone while bytes move either way, however long it lasts', () => {
    const r = request();
    timeouts.watch(r.ctx);
    for (let i = 0; i < 20; i++) {
      vi.advanceTimersByTime(400);
      if (i % 2 === 0) r.socket.bytesRead++;
      else r.socket.bytesWritten += 10;
    }
    expect(r.failed).toEqual([]);
    vi.advanceTimersByTime(1500);
    expect(r.failed).toEqual(['STREAM_IDLE_TIMEOUT']);
  });

  it('cuts a response already under way (the connection is destroyed)', () => {
    const r = request({ headersSent: true });
    timeouts.watch(r.ctx);
    vi.advanceTimersByTime(1500);
    expect(r.failed).toEqual(['STREAM_IDLE_TIMEOUT']);
    expect(r.res.destroyed).toBeGreaterThan(0);
  });

  it('stops watching a request once its response closed', () => {
    const r = request();
    timeouts.watch(r.ctx);
    r.res.emit('close');
    expect(timeouts.size).toBe(0);
    vi.advanceTimersByTime(5000);
    expect(r.failed).toEqual([]);
  });

  it("answers node's request timeout for a request still receiving its body, not for a complete one", () => {
    const receiving = request();
    const complete = request({ complete: true });
    timeouts.watch(receiving.ctx);
    timeouts.watch(complete.ctx);
    expect(timeouts.requestTimedOut(receiving.res as never)).toBe(true);
    expect(receiving.failed).toEqual(['DOWNSTREAM_REQUEST_TIMEOUT']);
    expect(timeouts.requestTimedOut(complete.res as never)).toBe(false);
    expect(complete.failed).toEqual([]);
  });

  it('watches nothing when both timeouts are off', () => {
    const off = new StreamTimeouts({ streamIdleTimeoutMs: 0, requestTimeoutMs: 0 });
    const r = request();
    off.watch(r.ctx);
    expect(off.size).toBe(0);
  });
});

describe('listener timeout defaults and checks', () => {
  const listener = (extra: Partial<Listener>): Listener => ({
    name: 'l',
    port: 0,
    routeConfigName: 'r',
    ...extra,
  });

  it('gives GATEWAY listeners a 300 s request timeout, others none', () => {
    expect(directionLimitDefaults('GATEWAY')).toEqual({ requestTimeoutMs: GATEWAY_REQUEST_TIMEOUT_MS });
    expect(GATEWAY_REQUEST_TIMEOUT_MS).toBe(300_000);
    expect(directionLimitDefaults('OUTBOUND')).toEqual({});
    expect(directionLimitDefaults(undefined)).toEqual({});
  });

  it.each([
    [{ limits: { requestTimeoutMs: 0 } }, []],
    [{ limits: { requestTimeoutMs: 10_000 } }, []],
    [
      { limits: { requestTimeoutMs: 5000 } },
      [
        'Listener l: limits.requestTimeoutMs: must be 0 (none) or at least requestHeadersTimeoutMs (10000 ms), got 5000',
      ],
    ],
    [
      { direction: 'GATEWAY', limits: { requestHeadersTimeoutMs: 400_000 } },
      [
        'Listener l: limits.requestTimeoutMs: must be 0 (none) or at least requestHeadersTimeoutMs (400000 ms), got 300000',
      ],
    ],
    [{ limits: { requestHeadersTimeoutMs: 0, requestTimeoutMs: 1 } }, []],
  ] as const)('checks %j', (extra, problems) => {
    expect(checkStreamTimeouts(listener(extra as Partial<Listener>), 'Listener l', 10_000)).toEqual(problems);
  });

  it('is part of the config consistency check', () => {
    const config: ProxyConfig = {
      listeners: [listener({ limits: { requestHeadersTimeoutMs: 3000, requestTimeoutMs: 2000 } })],
      routes: [{ name: 'r' }],
      clusters: [],
      endpoints: [],
    };
    expect(checkConsistency(config)).toEqual([
      'Listener l: limits.requestTimeoutMs: must be 0 (none) or at least requestHeadersTimeoutMs (3000 ms), got 2000',
    ]);
  });
});
