/** The CA key at rest: AES-256-GCM sealing, wrong keys, tampering, key files. */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  KeyStoreError,
  openKey,
  readEncryptionKeyFile,
  sealKey,
} from '../../../control-plane/ca/keystore.ts';
import { generateRsaKeyPair, type KeyPairPem } from '../../../control-plane/ca/pki.ts';

let pair: KeyPairPem;
let dir: string;
beforeAll(async () => {
  pair = await generateRsaKeyPair();
  dir = await mkdtemp(join(tmpdir(), 'weft-keystore-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('CA key sealing', () => {
  it('round-trips, and the sealed value holds no PEM and no key bytes', () => {
    const key = randomBytes(32);
    const sealed = sealKey(pair.privateKeyPem, 'fp-1', key);
    const text = JSON.stringify(sealed);
    expect(sealed.alg).toBe('aes-256-gcm');
    expect(text).not.toContain('PRIVATE KEY');
    expect(text).not.toContain(pair.privateKeyPem.split('\n')[1]);
    expect(openKey(sealed, 'fp-1', key)).toBe(pair.privateKeyPem);
  });

  it('uses a fresh IV every time', () => {
    const key = randomBytes(32);
    const a = sealKey(pair.privateKeyPem, 'fp', key);
    const b = sealKey(pair.privateKeyPem, 'fp', key);
    expect(a.alg === 'aes-256-gcm' && b.alg === 'aes-256-gcm' && a.iv !== b.iv).toBe(true);
  });

  it('refuses a missing key, another key, another certificate, and a tampered value', () => {
    const key = randomBytes(32);
    const sealed = sealKey(pair.privateKeyPem, 'fp', key);
    expect(() => openKey(sealed, 'fp')).toThrow(/encrypted: pass --ca-encryption-key-file/);
    expect(() => openKey(sealed, 'fp', randomBytes(32))).toThrow(/encrypted with another key/);
    expect(() => openKey(sealed, 'other-fp', key)).toThrow(KeyStoreError);
    if (sealed.alg !== 'aes-256-gcm') throw new Error('not sealed');
    const data = Buffer.from(sealed.data, 'base64');
    data[10] = (data[10] ?? 0) ^ 1;
    expect(() => openKey({ ...sealed, data: data.toString('base64') }, 'fp', key)).toThrow(
      /does not decrypt/,
    );
  });

  it('keeps the PEM without an encryption key', () => {
    expect(sealKey(pair.privateKeyPem, 'fp')).toEqual({ alg: 'none', pem: pair.privateKeyPem });
  });

  it('reads key files as 64 hex characters or 32 raw bytes, and nothing else', async () => {
    const key = randomBytes(32);
    await writeFile(join(dir, 'hex'), `${key.toString('hex')}\n`, { mode: 0o600 });
    await writeFile(join(dir, 'raw'), key, { mode: 0o600 });
    await writeFile(join(dir, 'short'), 'abcd', { mode: 0o600 });
    expect((await readEncryptionKeyFile(join(dir, 'hex'))).equals(key)).toBe(true);
    expect((await readEncryptionKeyFile(join(dir, 'raw'))).equals(key)).toBe(true);
    await expect(readEncryptionKeyFile(join(dir, 'short'))).rejects.toThrow(/32 bytes/);
    const warnings: string[] = [];
    await writeFile(join(dir, 'open'), key.toString('hex'), { mode: 0o644 });
    await readEncryptionKeyFile(join(dir, 'open'), (m) => warnings.push(m));
    expect(warnings.join()).toMatch(/readable by group or others/);
  });
});
