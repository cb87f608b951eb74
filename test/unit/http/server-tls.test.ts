/**
 * TLS termination compile step (sidecar/proxy/http/server-tls.ts): bad config is rejected with
 * the field and reason before anything changes; SNI selection prefers exact names, then the
 * longest wildcard suffix, then the default certificate.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { TlsCertificate } from '../../../sidecar/proxy/config/types.ts';
import { compileServerTls, selectContext } from '../../../sidecar/proxy/http/server-tls.ts';

const dir = mkdtempSync(join(tmpdir(), 'weft-server-tls-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function selfSigned(name: string): { certChainPem: string; privateKeyPem: string } {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      join(dir, `${name}.key`),
      '-out',
      join(dir, `${name}.crt`),
    ],
    { stdio: 'ignore' },
  );
  return {
    certChainPem: readFileSync(join(dir, `${name}.crt`), 'utf8'),
    privateKeyPem: readFileSync(join(dir, `${name}.key`), 'utf8'),
  };
}

const a = selfSigned('a');
const b = selfSigned('b');
const certs: TlsCertificate[] = [
  { name: 'a', ...a },
  { name: 'b', certChainFile: join(dir, 'b.crt'), privateKeyFile: join(dir, 'b.key') },
  { name: 'mismatch', certChainPem: a.certChainPem, privateKeyPem: b.privateKeyPem },
  { name: 'bare' },
];

describe('compileServerTls', () => {
  it.each([
    [{ certificates: [] }, /at least one/],
    [{ certificates: [{ certificateName: 'nope' }] }, /certificateName: no certificate named "nope"/],
    [
      { certificates: [{ certificateName: 'a' }], minVersion: 'TLSv1.1' },
      /minVersion: must be TLSv1.2 or TLSv1.3/,
    ],
    [{ certificates: [{ certificateName: 'mismatch' }] }, /certificate "mismatch": .*key/i],
    [{ certificates: [{ certificateName: 'bare' }] }, /certificate "bare": no PEM, no files/],
    [
      { certificates: [{ serverNames: ['bad name'], certificateName: 'a' }] },
      /serverNames: "bad name" is not a host name/,
    ],
    [
      {
        certificates: [
          { serverNames: ['x.test'], certificateName: 'a' },
          { serverNames: ['X.test'], certificateName: 'b' },
        ],
      },
      /listed twice/,
    ],
  ])('rejects %j', (serverTls, message) => {
    expect(() => compileServerTls(serverTls, certs)).toThrow(message);
  });

  it('selects exact, then the longest wildcard suffix, then the default; no SNI gets the default', () => {
    const c = compileServerTls(
      {
        certificates: [
          { serverNames: ['a.example.test', '*.deep.example.test'], certificateName: 'a' },
          { serverNames: ['*.example.test'], certificateName: 'b' },
        ],
      },
      certs,
    );
    const ctxA = selectContext(c, 'a.example.test');
    const ctxB = selectContext(c, 'other.example.test');
    expect(ctxA).toBeDefined();
    expect(ctxB).toBeDefined();
    expect(ctxA).not.toBe(ctxB);
    expect(selectContext(c, 'x.deep.example.test')).toBe(ctxA);
    expect(selectContext(c, 'A.EXAMPLE.TEST')).toBe(ctxA);
    expect(selectContext(c, 'example.test')).toBeUndefined();
    expect(selectContext(c, '')).toBe(ctxA); // no default entry: the first certificate
    const withDefault = compileServerTls(
      { certificates: [{ serverNames: ['a.test'], certificateName: 'a' }, { certificateName: 'b' }] },
      certs,
    );
    expect(selectContext(withDefault, 'unknown.test')).toBe(selectContext(withDefault, ''));
    expect(selectContext(withDefault, 'unknown.test')).not.toBe(selectContext(withDefault, 'a.test'));
  });

  it('resolves a certificate without material through the resolver', () => {
    const seen: string[] = [];
    compileServerTls({ certificates: [{ certificateName: 'bare' }] }, certs, (cert) => {
      seen.push(cert.name);
      return a;
    });
    expect(seen).toEqual(['bare']);
  });
});
