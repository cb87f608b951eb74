/**
 * The CA private key at rest. With an operator-supplied 32-byte key (`--ca-encryption-key-file`)
 * the CA key is sealed with AES-256-GCM; without one it is kept as PEM (the caller warns).
 *
 * Invariants: a sealed value holds no PEM and no plaintext key material: the ciphertext is of the
 * PKCS#8 DER, under a fresh random 96-bit IV, with the CA certificate's fingerprint as
 * additional authenticated data (a sealed key cannot be moved under another certificate), and
 * `keyId` (the first 8 bytes of SHA-256 of the encryption key) tells a wrong key from a corrupt
 * value. Opening verifies the GCM tag before anything is returned.
 *
 * Spec: NIST SP 800-38D (GCM; 96-bit IVs, 128-bit tags).
 */
import { createCipheriv, createDecipheriv, createHash, createPrivateKey, randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';

/** A CA private key as stored: plain PEM, or sealed with AES-256-GCM (fields base64). */
export type StoredKey =
  | { readonly alg: 'none'; readonly pem: string }
  | {
      readonly alg: 'aes-256-gcm';
      readonly keyId: string;
      readonly iv: string;
      readonly tag: string;
      readonly data: string;
    };

/** Thrown when a stored key cannot be opened (no key, wrong key, tampered value). */
export class KeyStoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyStoreError';
  }
}

/** `keyId` of an encryption key: hex of the first 8 bytes of its SHA-256. */
export function encryptionKeyId(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

/**
 * Seals the PKCS#8 PEM `keyPem` for storage, bound to `aad` (the CA certificate fingerprint);
 * with no `encryptionKey` returns it as plain PEM.
 * @throws KeyStoreError when `encryptionKey` is not 32 bytes.
 */
export function sealKey(keyPem: string, aad: string, encryptionKey?: Buffer): StoredKey {
  if (encryptionKey === undefined) return { alg: 'none', pem: keyPem };
  if (encryptionKey.length !== 32) throw new KeyStoreError('the CA encryption key must be 32 bytes');
  const der = createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'der' });
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', encryptionKey, iv);
  cipher.setAAD(Buffer.from(aad));
  const data = Buffer.concat([cipher.update(der), cipher.final()]);
  return {
    alg: 'aes-256-gcm',
    keyId: encryptionKeyId(encryptionKey),
    iv: iv.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
    data: data.toString('base64'),
  };
}

/**
 * The PKCS#8 PEM private key held by `stored`.
 * @throws KeyStoreError when the key is sealed and `encryptionKey` is missing or wrong, or the
 * value was altered (GCM tag mismatch).
 */
export function openKey(stored: StoredKey, aad: string, encryptionKey?: Buffer): string {
  if (stored.alg === 'none') return stored.pem;
  if (encryptionKey === undefined) {
    throw new KeyStoreError('the CA key in the store is encrypted: pass --ca-encryption-key-file');
  }
  if (encryptionKeyId(encryptionKey) !== stored.keyId) {
    throw new KeyStoreError(
      `the CA key in the store was encrypted with another key (id ${stored.keyId}, given ${encryptionKeyId(encryptionKey)})`,
    );
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', encryptionKey, Buffer.from(stored.iv, 'base64'));
    decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(Buffer.from(stored.tag, 'base64'));
    const der = Buffer.concat([decipher.update(Buffer.from(stored.data, 'base64')), decipher.final()]);
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
      .export({ type: 'pkcs8', format: 'pem' })
      .toString();
  } catch {
    throw new KeyStoreError(
      'the CA key in the store does not decrypt (altered, or not for this certificate)',
    );
  }
}

/**
 * Reads an encryption key file: 64 hex characters (surrounding whitespace ignored) or exactly 32
 * raw bytes. Warns through `warn` when the file is readable by group or others.
 * @throws Error when the file cannot be read or holds neither form.
 */
export async function readEncryptionKeyFile(path: string, warn?: (message: string) => void): Promise<Buffer> {
  const raw = await readFile(path);
  const mode = (await stat(path)).mode;
  if ((mode & 0o077) !== 0 && warn) {
    warn(`${path} is readable by group or others (mode ${(mode & 0o777).toString(8)}); use 0600`);
  }
  const text = raw.toString('latin1').trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (raw.length === 32) return raw;
  throw new Error(`${path}: a CA encryption key is 32 bytes, raw or as 64 hex characters`);
}
