import { describe, expect, it } from 'vitest';
import { nextTraceparent } from '../../../sidecar/proxy/http/trace.ts';

const FORMAT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

describe('W3C traceparent propagation', () => {
  it('keeps the trace id and flags of a valid traceparent and sets a new parent id', () => {
    const incoming = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const hop = nextTraceparent(incoming);
    expect(hop.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(hop.traceparent).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
    expect(hop.traceparent.split('-')[2]).not.toBe('00f067aa0ba902b7');
  });

  it.each([
    ['absent', undefined],
    ['malformed', 'garbage'],
    ['all-zero trace id', '00-00000000000000000000000000000000-00f067aa0ba902b7-01'],
    ['all-zero parent id', '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01'],
    ['version ff', 'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'],
    ['upper-case hex', '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01'],
  ])('starts a new unsampled trace when the header is %s', (_name, incoming) => {
    const hop = nextTraceparent(incoming);
    expect(hop.traceparent).toMatch(FORMAT);
    expect(hop.traceparent.endsWith('-00')).toBe(true);
    expect(hop.traceId).not.toBe('4bf92f3577b34da6a3ce929d0e0e4736');
  });
});
