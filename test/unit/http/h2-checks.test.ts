/**
 * The HTTP/2 request checks node:http2 leaves to us (h2-request-checks.ts) and the GOAWAY codes for
 * sessions node:http2 ends on a peer's error (h2-errors.ts). The same behaviours end to end, on
 * raw sockets: test/integration/bad-input-h2.test.ts.
 */
import { constants } from 'node:http2';
import { describe, expect, it } from 'vitest';
import { goawayCodeOf } from '../../../sidecar/proxy/http/h2-errors.ts';
import { h2RequestDefect } from '../../../sidecar/proxy/http/h2-request-checks.ts';

const PSEUDO = [':method', 'GET', ':scheme', 'https', ':path', '/', ':authority', 'a.example'];

describe('h2RequestDefect', () => {
  it('passes a plain request, and a host equal to :authority but for case', () => {
    expect(h2RequestDefect({ rawHeaders: PSEUDO }, 100, 16384)).toBeUndefined();
    expect(h2RequestDefect({ rawHeaders: [...PSEUDO, 'host', 'A.Example'] }, 100, 16384)).toBeUndefined();
  });

  it('400 for a host that differs from :authority (RFC 9113 §8.3.1)', () => {
    expect(h2RequestDefect({ rawHeaders: [...PSEUDO, 'host', 'b.example'] }, 100, 16384)).toEqual({
      kind: 'BAD_REQUEST',
      reason: 'the Host field differs from :authority',
    });
  });

  it('431 above the field count, pseudo-header fields not counted', () => {
    const fields = (n: number) => Array.from({ length: n }, (_, i) => [`x-${i}`, 'v']).flat();
    expect(h2RequestDefect({ rawHeaders: [...PSEUDO, ...fields(3)] }, 3, 16384)).toBeUndefined();
    expect(h2RequestDefect({ rawHeaders: [...PSEUDO, ...fields(4)] }, 3, 16384)?.kind).toBe(
      'REQUEST_HEADERS_TOO_LARGE',
    );
  });

  it('431 above the header list size, counted as RFC 7541 §4.1 does (name + value + 32)', () => {
    // pseudo-header fields: 7+3 + 7+5 + 5+1 + 10+9 + 4*32 = 175 bytes; x-a: 3+10+32 = 45
    const raw = [...PSEUDO, 'x-a', 'a'.repeat(10)];
    expect(h2RequestDefect({ rawHeaders: raw }, 100, 220)).toBeUndefined();
    expect(h2RequestDefect({ rawHeaders: raw }, 100, 219)).toEqual({
      kind: 'REQUEST_HEADERS_TOO_LARGE',
      reason: 'a header list larger than 219 bytes',
    });
  });
});

describe('goawayCodeOf', () => {
  const nghttp2Error = (errno: number): Error =>
    Object.assign(new Error('x'), { code: 'ERR_HTTP2_ERROR', errno });

  it('ENHANCE_YOUR_CALM for floods (nghttp2 and node limits)', () => {
    for (const errno of [-904, -905, -537]) {
      expect(goawayCodeOf(nghttp2Error(errno))).toBe(constants.NGHTTP2_ENHANCE_YOUR_CALM);
    }
    const invalid = Object.assign(new Error('x'), { code: 'ERR_HTTP2_TOO_MANY_INVALID_FRAMES', errno: -902 });
    expect(goawayCodeOf(invalid)).toBe(constants.NGHTTP2_ENHANCE_YOUR_CALM);
  });

  it('the protocol error codes for nghttp2 connection errors', () => {
    expect(goawayCodeOf(nghttp2Error(-505))).toBe(constants.NGHTTP2_PROTOCOL_ERROR);
    expect(goawayCodeOf(nghttp2Error(-522))).toBe(constants.NGHTTP2_FRAME_SIZE_ERROR);
    expect(goawayCodeOf(nghttp2Error(-523))).toBe(constants.NGHTTP2_COMPRESSION_ERROR);
    expect(goawayCodeOf(nghttp2Error(-524))).toBe(constants.NGHTTP2_FLOW_CONTROL_ERROR);
  });

  it("node's default for anything else", () => {
    expect(goawayCodeOf(undefined)).toBeUndefined();
    expect(goawayCodeOf(null)).toBeUndefined();
    expect(goawayCodeOf(new Error('socket hang up'))).toBeUndefined();
    expect(goawayCodeOf(nghttp2Error(-902))).toBeUndefined();
  });
});
