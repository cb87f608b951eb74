import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { errorCode, errorStatus } from '../../../sidecar/proxy/errors.ts';
import {
  OVERLOAD_DEFAULTS,
  overloadLimits,
  registerOverloadMetrics,
  shedReason,
} from '../../../sidecar/proxy/overload.ts';

describe('overload manager', () => {
  it('admits up to maxActiveRequests in progress and sheds the next one', () => {
    const limits = overloadLimits({ maxActiveRequests: 3 });
    expect(shedReason(3, limits)).toBeUndefined();
    expect(shedReason(4, limits)).toBe('active_requests');
  });

  it('a bound of 0 never sheds on active requests', () => {
    expect(shedReason(1_000_000, overloadLimits({ maxActiveRequests: 0 }))).toBeUndefined();
  });

  it('defaults: 4096 active requests, the event-loop trigger off', () => {
    expect(overloadLimits(undefined)).toEqual(OVERLOAD_DEFAULTS);
    expect(OVERLOAD_DEFAULTS).toEqual({ maxActiveRequests: 4096, maxEventLoopDelayMs: 0 });
  });

  it('OVERLOADED is a 503 with a stable code', () => {
    expect(errorStatus('OVERLOADED')).toBe(503);
    expect(errorCode('OVERLOADED')).toBe('WEFT_ERR_OVERLOADED');
  });

  it('counts shed requests by reason in weft_overload_shed_total', async () => {
    const registry = new Registry();
    registerOverloadMetrics(registry);
    const before = await registry.getSingleMetricAsString('weft_overload_shed_total');
    const count = (text: string): number =>
      Number(/weft_overload_shed_total\{reason="active_requests"\} (\d+)/.exec(text)?.[1] ?? 0);
    shedReason(2, overloadLimits({ maxActiveRequests: 1 }));
    const after = await registry.getSingleMetricAsString('weft_overload_shed_total');
    expect(count(after)).toBe(count(before) + 1);
    expect(await registry.getSingleMetricAsString('weft_event_loop_delay_seconds')).toMatch(
      /weft_event_loop_delay_seconds \d/,
    );
  });
});
