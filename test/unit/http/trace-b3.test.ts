/**
 * B3 propagation (https://github.com/openzipkin/b3-propagation) beside W3C traceparent
 * (sidecar/proxy/http/trace.ts `propagateTrace`): single and multi header forms are read, rewritten
 * with this hop's span id (the incoming span becomes the parent), and agree with traceparent.
 */
import { describe, expect, it } from 'vitest';
import { parseB3Multi, parseB3Single, propagateTrace } from '../../../sidecar/proxy/http/trace.ts';
import type { HeaderMap } from '../../../sidecar/proxy/router/types.ts';

const TRACE128 = '80f198ee56343ba864fe8b2a57d3eff7';
const TRACE64 = '64fe8b2a57d3eff7';
const SPAN = 'e457b5a2e4d86bd1';
const PARENT = '05e3ac9a4f6e3b90';
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

describe('parseB3Single', () => {
  it.each([
    [`${TRACE128}-${SPAN}-1-${PARENT}`, { traceId: TRACE128, spanId: SPAN, sampled: '1' }],
    [`${TRACE64}-${SPAN}-d`, { traceId: TRACE64, spanId: SPAN, sampled: 'd' }],
    [`${TRACE128}-${SPAN}`, { traceId: TRACE128, spanId: SPAN, sampled: '' }],
    [`${TRACE128.toUpperCase()}-${SPAN}-0`, { traceId: TRACE128, spanId: SPAN, sampled: '0' }],
  ])('reads %s', (value, expected) => {
    expect(parseB3Single(value)).toEqual(expected);
  });

  it.each([
    ['sampling only', '1'],
    ['deny only', '0'],
    ['short trace id', `abc-${SPAN}-1`],
    ['zero trace id', `${'0'.repeat(32)}-${SPAN}-1`],
    ['bad sampling state', `${TRACE128}-${SPAN}-x`],
    ['bad parent', `${TRACE128}-${SPAN}-1-xyz`],
  ])('rejects %s', (_, value) => {
    expect(parseB3Single(value)).toBeUndefined();
  });
});

describe('parseB3Multi', () => {
  it('reads X-B3-* (Flags: 1 means debug) and rejects a missing span id', () => {
    expect(parseB3Multi({ 'x-b3-traceid': TRACE64, 'x-b3-spanid': SPAN, 'x-b3-sampled': '1' })).toEqual({
      traceId: TRACE64,
      spanId: SPAN,
      sampled: '1',
    });
    expect(parseB3Multi({ 'x-b3-traceid': TRACE128, 'x-b3-spanid': SPAN, 'x-b3-flags': '1' })?.sampled).toBe(
      'd',
    );
    expect(parseB3Multi({ 'x-b3-traceid': TRACE128 })).toBeUndefined();
  });
});

describe('propagateTrace', () => {
  it('without any trace header starts a trace: a new unsampled traceparent, no B3 added', () => {
    const headers: HeaderMap = {};
    const { traceId, spanId } = propagateTrace(headers);
    expect(headers.traceparent).toBe(`00-${traceId}-${spanId}-00`);
    expect(headers.b3).toBeUndefined();
    expect(headers['x-b3-traceid']).toBeUndefined();
  });

  it('single b3: continues the trace in b3 and traceparent, the incoming span as parent, sampling kept', () => {
    const headers: HeaderMap = { b3: `${TRACE64}-${SPAN}-1-${PARENT}` };
    const { traceId, spanId } = propagateTrace(headers);
    expect(traceId).toBe(TRACE64.padStart(32, '0'));
    expect(headers.b3).toBe(`${TRACE64}-${spanId}-1-${SPAN}`);
    expect(headers.traceparent).toBe(`00-${TRACE64.padStart(32, '0')}-${spanId}-01`);
    expect(spanId).not.toBe(SPAN);
  });

  it('multi X-B3-*: rewrites the set with this hop as the span and the incoming span as parent', () => {
    const headers: HeaderMap = {
      'x-b3-traceid': TRACE128,
      'x-b3-spanid': SPAN,
      'x-b3-parentspanid': PARENT,
      'x-b3-sampled': '0',
    };
    const { spanId } = propagateTrace(headers);
    expect(headers).toMatchObject({
      'x-b3-traceid': TRACE128,
      'x-b3-spanid': spanId,
      'x-b3-parentspanid': SPAN,
      'x-b3-sampled': '0',
      traceparent: `00-${TRACE128}-${spanId}-00`,
    });
    expect(headers.b3).toBeUndefined();
  });

  it('traceparent wins over b3 and b3 follows its trace id and sampling', () => {
    const w3cTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const headers: HeaderMap = {
      traceparent: `00-${w3cTrace}-00f067aa0ba902b7-01`,
      tracestate: 'congo=t61rcWkgMzE',
      b3: `${TRACE128}-${SPAN}-0`,
    };
    const { traceId, spanId } = propagateTrace(headers);
    expect(traceId).toBe(w3cTrace);
    expect(headers.traceparent).toMatch(TRACEPARENT);
    expect(headers.traceparent).toBe(`00-${w3cTrace}-${spanId}-01`);
    expect(headers.b3).toBe(`${w3cTrace}-${spanId}-1-${SPAN}`);
    expect(headers.tracestate).toBe('congo=t61rcWkgMzE');
  });

  it('a malformed b3 is ignored (left as is) and a new trace starts', () => {
    const headers: HeaderMap = { b3: 'nonsense' };
    const { traceId } = propagateTrace(headers);
    expect(headers.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-00$`));
    expect(headers.b3).toBe('nonsense');
  });
});
