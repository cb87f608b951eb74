/**
 * Trace context propagation: the proxy is one hop of the trace, in two header formats.
 *
 * - W3C Trace Context (https://www.w3.org/TR/trace-context/ §3.2): a valid incoming `traceparent`
 *   keeps its trace-id and flags and gets this hop's span id as the new parent-id. `tracestate` is
 *   forwarded untouched.
 * - B3 (https://github.com/openzipkin/b3-propagation): the single `b3` header
 *   (`{TraceId}-{SpanId}[-{SamplingState}[-{ParentSpanId}]]`, or just the sampling state) and the
 *   multi headers `X-B3-TraceId`, `X-B3-SpanId`, `X-B3-ParentSpanId`, `X-B3-Sampled`, `X-B3-Flags`.
 *   When the request carries B3 it is forwarded in the same form with this hop's span id (the
 *   incoming span becomes the parent); a 64-bit trace id is kept as is in B3 and left-padded with
 *   zeros to 128 bits in `traceparent`.
 *
 * Precedence: a valid `traceparent`, else valid B3 (single before multi), else a new trace (W3C
 * only; sampled with the probability `setNewTraceSampleRate` set, default 0). Whichever wins, the outgoing `traceparent` always carries the trace, and any
 * B3 the request carried is rewritten to the same trace id and this hop's span id, so both kinds of
 * client see one trace. Sampling: W3C flag `01` ⇔ B3 sampled `1` or debug `d` / `X-B3-Flags: 1`.
 */
import { randomHexId } from '../ids.ts';
import type { HeaderMap } from '../router/types.ts';

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '00000000000000000000000000000000';
const ZERO_SPAN = '0000000000000000';
const HEX_TRACE = /^(?:[0-9a-f]{16}|[0-9a-f]{32})$/;
const HEX_SPAN = /^[0-9a-f]{16}$/;

/** The outgoing traceparent and the trace id it carries. */
export interface TraceHop {
  readonly traceparent: string;
  readonly traceId: string;
}

/**
 * Builds this hop's `traceparent` from the incoming header value (or `undefined`).
 * Version `ff` and all-zero ids are invalid per the spec and restart the trace.
 */
export function nextTraceparent(incoming: string | undefined, spanId = randomHexId(8)): TraceHop {
  const parsed = parseTraceparent(incoming);
  if (parsed !== undefined) {
    return { traceparent: `00-${parsed.traceId}-${spanId}-${parsed.flags}`, traceId: parsed.traceId };
  }
  const traceId = randomHexId(16);
  return { traceparent: `00-${traceId}-${spanId}-00`, traceId };
}

function parseTraceparent(
  incoming: string | undefined,
): { traceId: string; parentId: string; flags: string } | undefined {
  if (incoming === undefined) return undefined;
  const m = TRACEPARENT.exec(incoming.trim());
  if (m === null || m[1] === 'ff' || m[2] === ZERO_TRACE || m[3] === ZERO_SPAN || (m[1] === '00' && m[5])) {
    return undefined;
  }
  return { traceId: m[2] as string, parentId: m[3] as string, flags: m[4] as string };
}

/** A B3 context: ids lower-case hex (trace 16 or 32 digits), sampling `1` | `0` | `d` | '' (defer). */
export interface B3Context {
  readonly traceId: string;
  readonly spanId: string;
  readonly sampled: '1' | '0' | 'd' | '';
}

const SAMPLING: Readonly<Record<string, B3Context['sampled']>> = {
  '1': '1',
  '0': '0',
  d: 'd',
  true: '1',
  false: '0',
};

/** Parses the single `b3` header; undefined when absent, sampling-only or malformed. */
export function parseB3Single(value: string | undefined): B3Context | undefined {
  if (value === undefined) return undefined;
  const parts = value.trim().toLowerCase().split('-');
  if (parts.length < 2 || parts.length > 4) return undefined;
  const [traceId, spanId, sampling = '', parent] = parts as [string, string, string?, string?];
  if (!HEX_TRACE.test(traceId) || !HEX_SPAN.test(spanId) || /^0+$/.test(traceId) || /^0+$/.test(spanId)) {
    return undefined;
  }
  if (parent !== undefined && !HEX_SPAN.test(parent)) return undefined;
  const sampled = sampling === '' ? '' : SAMPLING[sampling];
  if (sampled === undefined) return undefined;
  return { traceId, spanId, sampled };
}

const header = (headers: HeaderMap, name: string): string | undefined => {
  const v = headers[name];
  return typeof v === 'string' ? v : Array.isArray(v) ? v[0] : undefined;
};

/** Parses the `X-B3-*` headers; undefined when the trace or span id is absent or malformed. */
export function parseB3Multi(headers: HeaderMap): B3Context | undefined {
  const traceId = header(headers, 'x-b3-traceid')?.trim().toLowerCase();
  const spanId = header(headers, 'x-b3-spanid')?.trim().toLowerCase();
  if (traceId === undefined || spanId === undefined) return undefined;
  if (!HEX_TRACE.test(traceId) || !HEX_SPAN.test(spanId) || /^0+$/.test(traceId) || /^0+$/.test(spanId)) {
    return undefined;
  }
  const flags = header(headers, 'x-b3-flags')?.trim();
  const sampledHeader = header(headers, 'x-b3-sampled')?.trim().toLowerCase();
  const sampled = flags === '1' ? 'd' : sampledHeader === undefined ? '' : (SAMPLING[sampledHeader] ?? '');
  return { traceId, spanId, sampled };
}

const B3_MULTI = ['x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled', 'x-b3-flags'] as const;

/** This hop of a trace, as `propagateTrace` wrote it. */
export interface TraceContext {
  /** 32 lower-case hex digits. */
  readonly traceId: string;
  /** This hop's span id, 16 hex digits. */
  readonly spanId: string;
  /** The caller's span id ('' when this hop started the trace). */
  readonly parentSpanId: string;
  /** The sampled flag sent on (W3C `01` / B3 `1` or `d`). */
  readonly sampled: boolean;
}

let newTraceSampleRate = 0;

/**
 * The share (0..1) of traces started here (requests without trace context) that are marked
 * sampled; default 0 (Envoy's and Istio's default is 1 %, Weft leaves it to the operator).
 */
export function setNewTraceSampleRate(rate: number): void {
  if (!(rate >= 0 && rate <= 1)) throw new RangeError(`trace sample rate must be within 0..1, got ${rate}`);
  newTraceSampleRate = rate;
}

/**
 * Rewrites the trace headers of an upstream request in place (see the module header) and returns
 * this hop's trace context (the trace id for logs, the span ids for span export).
 */
export function propagateTrace(headers: HeaderMap): TraceContext {
  const spanId = randomHexId(8);
  const w3c = parseTraceparent(header(headers, 'traceparent'));
  const single = parseB3Single(header(headers, 'b3'));
  const multi = single === undefined ? parseB3Multi(headers) : undefined;
  const b3 = single ?? multi;

  let traceId: string;
  let sampled: boolean;
  let parentSpanId = '';
  if (w3c !== undefined) {
    traceId = w3c.traceId;
    sampled = (Number.parseInt(w3c.flags, 16) & 1) === 1;
    parentSpanId = w3c.parentId;
  } else if (b3 !== undefined) {
    traceId = b3.traceId.padStart(32, '0');
    sampled = b3.sampled === '1' || b3.sampled === 'd';
    parentSpanId = b3.spanId;
  } else {
    traceId = randomHexId(16);
    sampled = newTraceSampleRate > 0 && Math.random() < newTraceSampleRate;
  }
  const flags = w3c?.flags ?? (sampled ? '01' : '00');
  headers.traceparent = `00-${traceId}-${spanId}-${flags}`;

  if (b3 !== undefined) {
    // B3 keeps its own trace id width when it is the same trace; else it follows traceparent.
    const b3Trace = b3.traceId.padStart(32, '0') === traceId ? b3.traceId : traceId;
    const b3Sampled = w3c !== undefined ? (sampled ? '1' : '0') : b3.sampled;
    if (single !== undefined) {
      // The parent span id may only follow a sampling state.
      headers.b3 =
        b3Sampled === '' ? `${b3Trace}-${spanId}` : `${b3Trace}-${spanId}-${b3Sampled}-${b3.spanId}`;
    } else {
      for (const name of B3_MULTI) delete headers[name];
      headers['x-b3-traceid'] = b3Trace;
      headers['x-b3-spanid'] = spanId;
      headers['x-b3-parentspanid'] = b3.spanId;
      if (b3Sampled === 'd') headers['x-b3-flags'] = '1';
      else if (b3Sampled !== '') headers['x-b3-sampled'] = b3Sampled;
    }
  }
  return { traceId, spanId, parentSpanId, sampled };
}
