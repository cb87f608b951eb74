import { describe, expect, it } from 'vitest';
import {
  applyForwardedFor,
  stripResponseHopByHop,
  upstreamRequestHeaders,
} from '../../../sidecar/proxy/http/headers.ts';

describe('intermediary header handling (RFC 9110 §7.6.1)', () => {
  it('drops hop-by-hop request fields, Expect, and names listed in Connection', () => {
    const raw = [
      'Host',
      'svc',
      'Connection',
      'keep-alive, X-Foo',
      'Keep-Alive',
      'timeout=5',
      'X-Foo',
      '1',
      'TE',
      'trailers',
      'Upgrade',
      'h2c',
      'Expect',
      '100-continue',
      'Proxy-Connection',
      'keep-alive',
      'X-Bar',
      '2',
    ];
    expect(upstreamRequestHeaders(raw, 'keep-alive, X-Foo')).toEqual({ host: 'svc', 'x-bar': '2' });
  });

  it('keeps repeated request fields in order', () => {
    const raw = ['Accept', 'a', 'X-Multi', '1', 'x-multi', '2', 'X-MULTI', '3'];
    expect(upstreamRequestHeaders(raw, undefined)).toEqual({ accept: 'a', 'x-multi': ['1', '2', '3'] });
  });

  it('drops hop-by-hop response fields and the names Connection lists, keeping Set-Cookie', () => {
    const headers = {
      connection: 'x-secret',
      'x-secret': 's',
      'transfer-encoding': 'chunked',
      'set-cookie': ['a=1', 'b=2'],
      'content-type': 'text/plain',
    };
    expect(stripResponseHopByHop(headers)).toEqual({
      'set-cookie': ['a=1', 'b=2'],
      'content-type': 'text/plain',
    });
  });

  it('replaces X-Forwarded-For with the peer when no hop is trusted', () => {
    const h: Record<string, string | string[]> = { 'x-forwarded-for': '6.6.6.6' };
    expect(applyForwardedFor(h, '127.0.0.1', 0)).toBe('127.0.0.1');
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
  });

  it('appends to X-Forwarded-For and finds the client through trusted hops', () => {
    const h: Record<string, string | string[]> = { 'x-forwarded-for': '1.1.1.1, 2.2.2.2' };
    expect(applyForwardedFor(h, '127.0.0.1', 1)).toBe('2.2.2.2');
    expect(h['x-forwarded-for']).toBe('1.1.1.1, 2.2.2.2, 127.0.0.1');
  });
});
