/**
 * `Secret` (weft.dev/v1alpha1): a TLS server certificate and its key in the store, for Gateway
 * HTTPS listeners (`tls.certificateRefs: [{name}]`, core kind Secret). Shaped after Kubernetes'
 * `kubernetes.io/tls` Secret, with the PEM text under `stringData` (not base64 `data`):
 *
 * ```yaml
 * spec:
 *   type: kubernetes.io/tls        # the only type
 *   stringData:
 *     tls.crt: "-----BEGIN CERTIFICATE-----..."   # PEM chain, leaf first
 *     tls.key: "-----BEGIN PRIVATE KEY-----..."   # PEM private key of the leaf
 * ```
 * Checks: every certificate of the chain parses, the key parses and matches the leaf.
 * The admin API never shows `tls.key` (`redactSecret`: a SHA-256 fingerprint instead); the
 * translator sends the PEM only to the gateway proxy whose Gateway names the Secret.
 */
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { splitPemCertificates } from '../../../sidecar/proxy/identity.ts';
import { enumOf, type Issues, joinPath, obj, str } from '../schema.ts';
import type { Resource, TlsSecretSpec } from '../types.ts';
import type { KindHandler } from './kind.ts';

const MAX_PEM = 64 * 1024;

const secretSchema = obj({
  type: enumOf('kubernetes.io/tls'),
  stringData: obj({
    'tls.crt': str({ minLength: 1, maxLength: MAX_PEM }),
    'tls.key': str({ minLength: 1, maxLength: MAX_PEM }),
  }),
});

function checkTls(spec: TlsSecretSpec, issues: Issues): void {
  const base = joinPath('spec', 'stringData');
  const crtPath = joinPath(base, 'tls.crt');
  const keyPath = joinPath(base, 'tls.key');
  const pems = splitPemCertificates(spec.stringData['tls.crt']);
  if (pems.length === 0) {
    issues.add(crtPath, 'must hold at least one PEM certificate');
    return;
  }
  let leaf: X509Certificate | undefined;
  pems.forEach((pem, i) => {
    try {
      const cert = new X509Certificate(pem);
      leaf ??= cert;
    } catch (err) {
      issues.add(crtPath, `certificate ${i + 1} of the chain does not parse: ${(err as Error).message}`);
    }
  });
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(spec.stringData['tls.key']);
  } catch (err) {
    issues.add(keyPath, `is not a PEM private key: ${(err as Error).message}`);
    return;
  }
  if (leaf !== undefined && !leaf.checkPrivateKey(key)) {
    issues.add(keyPath, 'does not match the first certificate of tls.crt');
  }
}

export const secret: KindHandler = {
  check(spec, _ctx, issues) {
    const out = secretSchema.check(spec, 'spec', issues);
    if (out === undefined) return undefined;
    const before = issues.count;
    checkTls(out, issues);
    return issues.count > before ? undefined : out;
  },
};

/**
 * `r` with a Secret's private key replaced by `<redacted sha256:…>` (its fingerprint, so a diff
 * still shows that it changed); any other resource as is.
 */
export function redactSecret<R extends Resource>(r: R): R {
  if (r.kind !== 'Secret') return r;
  const spec = r.spec as unknown as Partial<TlsSecretSpec>;
  const key = spec.stringData?.['tls.key'];
  if (typeof key !== 'string') return r;
  const fingerprint = createHash('sha256').update(key).digest('hex').slice(0, 16);
  return {
    ...r,
    spec: { ...spec, stringData: { ...spec.stringData, 'tls.key': `<redacted sha256:${fingerprint}>` } },
  };
}
