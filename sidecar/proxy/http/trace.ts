/**
 * W3C Trace Context propagation (https://www.w3.org/TR/trace-context/ §3.2): the proxy is one
 * hop of the trace. A valid incoming `traceparent` keeps its trace-id and flags and gets this
 * hop's span id as the new parent-id; an absent or invalid one starts a new trace (not sampled).
 * `tracestate` is forwarded untouched by the caller.
 */
import { randomHexId } from '../ids.ts';

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '00000000000000000000000000000000';
const ZERO_SPAN = '0000000000000000';

/** The outgoing traceparent and the trace id it carries. */
export interface TraceHop {
  readonly traceparent: string;
  readonly traceId: string;
}

/**
 * Builds this hop's `traceparent` from the incoming header value (or `undefined`).
 * Version `ff` and all-zero ids are invalid per the spec and restart the trace.
 */
export function nextTraceparent(incoming: string | undefined): TraceHop {
  const spanId = randomHexId(8);
  if (incoming !== undefined) {
    const m = TRACEPARENT.exec(incoming.trim());
    if (
      m !== null &&
      m[1] !== 'ff' &&
      m[2] !== ZERO_TRACE &&
      m[3] !== ZERO_SPAN &&
      (m[1] !== '00' || !m[5])
    ) {
      const traceId = m[2] as string;
      return { traceparent: `00-${traceId}-${spanId}-${m[4]}`, traceId };
    }
  }
  const traceId = randomHexId(16);
  return { traceparent: `00-${traceId}-${spanId}-00`, traceId };
}
