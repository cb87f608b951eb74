/**
 * `Secret` (kubernetes.io/tls): the chain and key must parse and match; the admin view redacts
 * the key to a fingerprint that still changes with the key.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { redactSecret } from '../../../control-plane/resources/kinds/secret.ts';
import type { Resource } from '../../../control-plane/resources/types.ts';
import { validateResource } from '../../../control-plane/resources/validate.ts';

const example = parse(
  readFileSync(new URL('../../fixtures/resources/valid/secret.yaml', import.meta.url), 'utf8'),
) as { spec: { stringData: Record<string, string> } } & Record<string, unknown>;
const crt = example.spec.stringData['tls.crt'] as string;
const key = example.spec.stringData['tls.key'] as string;

function withData(stringData: Record<string, unknown>, type = 'kubernetes.io/tls') {
  return { ...example, spec: { type, stringData } };
}

function errorsOf(doc: unknown): string[] {
  const r = validateResource(doc);
  return r.ok ? [] : r.errors;
}

describe('Secret', () => {
  it('accepts a matching certificate and key', () => {
    expect(errorsOf(example)).toEqual([]);
  });

  it.each([
    ['an unsupported type', withData({ 'tls.crt': crt, 'tls.key': key }, 'Opaque'), /spec\.type/],
    ['a missing key', withData({ 'tls.crt': crt }), /tls\.key.*is required/],
    [
      'no certificate',
      withData({ 'tls.crt': 'hello', 'tls.key': key }),
      /tls\.crt.*at least one PEM certificate/,
    ],
    [
      'a broken certificate',
      withData({ 'tls.crt': crt.replace(/\n[A-Za-z0-9+/]{64}\n/, '\nAAAA\n'), 'tls.key': key }),
      /tls\.crt.*does not parse/,
    ],
    ['a broken key', withData({ 'tls.crt': crt, 'tls.key': 'nope' }), /tls\.key.*not a PEM private key/],
    [
      'an unknown field',
      withData({ 'tls.crt': crt, 'tls.key': key, 'ca.crt': crt }),
      /ca\.crt.*unknown field/,
    ],
  ])('rejects %s', (_what, doc, message) => {
    expect(errorsOf(doc).join('\n')).toMatch(message);
  });

  it('rejects a key that does not match the certificate', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    }) as string;
    expect(errorsOf(withData({ 'tls.crt': crt, 'tls.key': other })).join('\n')).toMatch(
      /tls\.key.*does not match the first certificate/,
    );
  });

  it('redacts the key to a fingerprint, and leaves other kinds alone', () => {
    const r = validateResource(example);
    if (!r.ok) throw new Error(r.errors.join('; '));
    const shown = redactSecret(r.resource) as Resource<{ stringData: Record<string, string> }>;
    expect(shown.spec.stringData['tls.key']).toMatch(/^<redacted sha256:[0-9a-f]{16}>$/);
    expect(shown.spec.stringData['tls.crt']).toBe(crt);
    expect(JSON.stringify(shown)).not.toContain('PRIVATE KEY');
    const service = {
      apiVersion: 'weft.dev/v1alpha1',
      kind: 'Service',
      metadata: { name: 's' },
      spec: {},
    } as Resource;
    expect(redactSecret(service)).toBe(service);
  });
});
