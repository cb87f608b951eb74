/**
 * The proxy's SVID rules (sidecar/proxy/identity.ts, upstream/tls.ts): SPIFFE ID syntax, which
 * peer certificates are acceptable SVIDs, the exact-match check against an endpoint's expected ID,
 * and the TLS material built from an identity and the config's trust bundle.
 */
import { describe, expect, it } from 'vitest';
import {
  buildTlsMaterial,
  identityFromPem,
  parseSpiffeId,
  splitPemCertificates,
  svidSpiffeId,
} from '../../../sidecar/proxy/identity.ts';
import { checkPeerIdentity } from '../../../sidecar/proxy/upstream/tls.ts';
import { createCa, spiffeIdOf } from '../../support/pki.ts';

describe('parseSpiffeId (SPIFFE ID §2)', () => {
  const valid: [string, string, string][] = [
    ['spiffe://cluster.local/ns/default/sa/api', 'cluster.local', '/ns/default/sa/api'],
    ['spiffe://example.org', 'example.org', ''],
    ['spiffe://td-1_x.y/a.b/c-d/e_f', 'td-1_x.y', '/a.b/c-d/e_f'],
  ];
  for (const [id, trustDomain, path] of valid) {
    it(`accepts ${id}`, () => expect(parseSpiffeId(id)).toEqual({ trustDomain, path }));
  }
  const invalid = [
    'https://cluster.local/ns/default/sa/api',
    'SPIFFE://cluster.local/ns/a',
    'spiffe://',
    'spiffe:///ns/a',
    'spiffe://Cluster.local/ns/a',
    'spiffe://cluster.local:8443/ns/a',
    'spiffe://user@cluster.local/ns/a',
    'spiffe://cluster.local/',
    'spiffe://cluster.local/ns//sa/a',
    'spiffe://cluster.local/ns/./sa/a',
    'spiffe://cluster.local/ns/../sa/a',
    'spiffe://cluster.local/ns/a?x=1',
    'spiffe://cluster.local/ns/a#f',
    'spiffe://cluster.local/ns/a%20b',
    `spiffe://cluster.local/${'a'.repeat(2040)}`,
  ];
  for (const id of invalid) {
    it(`rejects ${id.length > 60 ? `${id.slice(0, 40)}… (${id.length} bytes)` : id}`, () =>
      expect(parseSpiffeId(id)).toBeUndefined());
  }
});

describe('svidSpiffeId (X.509-SVID §4: one URI SAN, not a CA, our trust domain)', () => {
  const cases: [string, string | undefined, boolean, string | RegExp][] = [
    [
      'one SPIFFE URI among other SANs',
      'DNS:api, URI:spiffe://td/ns/a/sa/b, IP Address:127.0.0.1',
      false,
      'spiffe://td/ns/a/sa/b',
    ],
    ['no SAN at all', undefined, false, /has 0 URI SANs/],
    ['two URI SANs', 'URI:spiffe://td/ns/a/sa/b, URI:spiffe://td/ns/a/sa/c', false, /has 2 URI SANs/],
    ['a non-SPIFFE URI', 'URI:https://td/ns/a/sa/b', false, /is not a SPIFFE ID/],
    ['another trust domain', 'URI:spiffe://evil/ns/a/sa/b', false, /not in trust domain td/],
    ['a CA certificate', 'URI:spiffe://td/ns/a/sa/b', true, /CA certificate/],
  ];
  for (const [name, san, isCa, expected] of cases) {
    it(name, () => {
      if (typeof expected === 'string') expect(svidSpiffeId(san, isCa, 'td')).toBe(expected);
      else expect(() => svidSpiffeId(san, isCa, 'td')).toThrow(expected);
    });
  }
});

describe('checkPeerIdentity (upstream: exact match with the endpoint identity)', () => {
  it('accepts exactly the expected ID', () => {
    expect(
      checkPeerIdentity(
        { subjectaltname: 'URI:spiffe://td/ns/a/sa/api', ca: false },
        'spiffe://td/ns/a/sa/api',
        'td',
      ),
    ).toBeUndefined();
  });
  it('names the presented and the expected ID when they differ', () => {
    const err = checkPeerIdentity(
      { subjectaltname: 'URI:spiffe://td/ns/a/sa/apix', ca: false },
      'spiffe://td/ns/a/sa/api',
      'td',
    );
    expect(err?.message).toBe(
      'the peer presented spiffe://td/ns/a/sa/apix, expected spiffe://td/ns/a/sa/api',
    );
    expect((err as Error & { code?: string }).code).toBe('ERR_WEFT_PEER_IDENTITY');
  });
  it('refuses a non-SVID before comparing', () => {
    expect(
      checkPeerIdentity({ subjectaltname: 'DNS:api', ca: false }, 'spiffe://td/ns/a/sa/api', 'td')?.message,
    ).toMatch(/0 URI SANs/);
  });
});

describe('identities and TLS material', () => {
  const ca = createCa('root');
  const other = createCa('other');
  const leaf = ca.leaf(spiffeIdOf('td', 'api'));

  it('reads the SPIFFE ID, trust domain and expiry from the leaf', () => {
    const id = identityFromPem(leaf.certPem + ca.certPem, leaf.keyPem);
    expect(id).toMatchObject({ spiffeId: 'spiffe://td/ns/default/sa/api', trustDomain: 'td' });
    expect(id.expiresAtMs).toBeGreaterThan(Date.now());
    expect(splitPemCertificates(id.certChainPem)).toHaveLength(2);
  });

  it('refuses a certificate that is not an SVID, or a key of another certificate', () => {
    expect(() => identityFromPem(ca.leaf('', { uris: [] }).certPem, leaf.keyPem)).toThrow(/not an SVID/);
    expect(() => identityFromPem(leaf.certPem, ca.keyPem)).toThrow(/does not match/);
    expect(() => identityFromPem('not a pem', leaf.keyPem)).toThrow(/no PEM certificate/);
  });

  it('trusts the deduplicated union of both bundles, with the config trust domain first', () => {
    const id = { ...identityFromPem(leaf.certPem, leaf.keyPem), trustBundlePem: [ca.certPem] };
    const m = buildTlsMaterial(id, { trustDomain: 'mesh.example', rootsPem: [ca.certPem, other.certPem] }, 3);
    expect(m.caPem).toHaveLength(2);
    expect(m.trustDomain).toBe('mesh.example');
    expect(m.generation).toBe(3);
    expect(buildTlsMaterial(id, undefined, 1).trustDomain).toBe('td');
  });

  it('refuses a root that does not parse', () => {
    const id = identityFromPem(leaf.certPem, leaf.keyPem);
    const broken = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
    expect(() => buildTlsMaterial(id, { trustDomain: 'td', rootsPem: [broken] }, 1)).toThrow(
      /a root does not parse/,
    );
  });
});
