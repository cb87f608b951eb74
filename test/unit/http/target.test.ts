import { describe, expect, it } from 'vitest';
import { parseTarget, splitAuthority } from '../../../sidecar/proxy/http/target.ts';

describe('request target (RFC 9112 §3.2)', () => {
  it.each([
    ['/a/b?x=1', 'svc-b', { host: 'svc-b', authority: 'svc-b', port: undefined, path: '/a/b', query: 'x=1' }],
    ['/p', 'Svc-B:80', { host: 'svc-b', authority: 'Svc-B:80', port: 80, path: '/p', query: '' }],
    [
      'http://Api:8080/v1?q',
      'ignored',
      { host: 'api', authority: 'Api:8080', port: 8080, path: '/v1', query: 'q' },
    ],
    [
      'http://api?q=1',
      undefined,
      { host: 'api', authority: 'api', port: undefined, path: '/', query: 'q=1' },
    ],
    ['http://api', undefined, { host: 'api', authority: 'api', port: undefined, path: '/', query: '' }],
    ['/x', '[::1]:8080', { host: '[::1]', authority: '[::1]:8080', port: 8080, path: '/x', query: '' }],
    ['/x?', 'h', { host: 'h', authority: 'h', port: undefined, path: '/x', query: '' }],
  ])('parses %s with Host %s', (url, host, expected) => {
    expect(parseTarget(url, host)).toEqual(expected);
  });

  it('keeps the query byte for byte', () => {
    expect(parseTarget('/p?a=%41&a=b&x=%2F&&', 'h')?.query).toBe('a=%41&a=b&x=%2F&&');
  });

  it.each(['ftp://x/y', 'http://user@host/', 'http:///nohost'])('refuses the target %s', (url) => {
    expect(parseTarget(url, 'h')).toBeUndefined();
  });

  it('treats an IPv6 literal without a port as a host', () => {
    expect(splitAuthority('[::1]')).toEqual({ host: '[::1]', port: undefined });
  });
});
