/** SPIFFE IDs: formatting, parsing, and the URI SAN of a certificate. */
import { describe, expect, it } from 'vitest';
import { formatSpiffeId, parseSpiffeId, SpiffeIdError, uriSanOf } from '../../../control-plane/ca/spiffe.ts';

describe('SPIFFE IDs', () => {
  it('formats and parses the Weft form', () => {
    const id = formatSpiffeId('cluster.local', { namespace: 'shop', serviceAccount: 'api' });
    expect(id).toBe('spiffe://cluster.local/ns/shop/sa/api');
    expect(parseSpiffeId(id)).toEqual({
      trustDomain: 'cluster.local',
      namespace: 'shop',
      serviceAccount: 'api',
      id,
      path: '/ns/shop/sa/api',
    });
  });

  it.each([
    'http://cluster.local/ns/a/sa/b',
    'spiffe://Cluster.Local/ns/a/sa/b',
    'spiffe://cluster.local/ns/a',
    'spiffe://cluster.local/ns/a/sa/b/extra',
    'spiffe://cluster.local/sa/a/ns/b',
    'spiffe://cluster.local/ns/../sa/b',
    'spiffe://cluster.local/ns/a/sa/b?x=1',
    'spiffe://cluster.local:8080/ns/a/sa/b',
  ])('refuses %s', (id) => {
    expect(() => parseSpiffeId(id)).toThrow(SpiffeIdError);
  });

  it('refuses names that cannot be path segments', () => {
    expect(() => formatSpiffeId('cluster.local', { namespace: 'a/b', serviceAccount: 'c' })).toThrow(
      SpiffeIdError,
    );
    expect(() => formatSpiffeId('not a domain', { namespace: 'a', serviceAccount: 'c' })).toThrow(
      SpiffeIdError,
    );
  });

  it('reads the single URI SAN of Node’s subjectAltName text', () => {
    expect(uriSanOf('DNS:localhost, URI:spiffe://td/ns/a/sa/b, IP Address:127.0.0.1')).toBe(
      'spiffe://td/ns/a/sa/b',
    );
    expect(uriSanOf('DNS:localhost')).toBeUndefined();
    expect(uriSanOf(undefined)).toBeUndefined();
    expect(() => uriSanOf('URI:spiffe://td/ns/a/sa/b, URI:spiffe://td/ns/c/sa/d')).toThrow(SpiffeIdError);
  });
});
