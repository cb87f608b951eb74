/**
 * Server certificates from a local directory (`weft gateway --cert-dir DIR`): the translator
 * names a Gateway listener's certificateRef `{name: web-tls}` in namespace `ns` as config
 * certificate `ns/web-tls` without material when the store has no Secret of that name
 * (control-plane/translate/gateway.ts); the gateway reads `DIR/web-tls.crt` (PEM chain, leaf
 * first) and `DIR/web-tls.key` (PEM private key) when it applies a config, and on SIGHUP
 * (gateway/run.ts): replace the files, send SIGHUP, and new handshakes use the new certificate.
 * These private keys never pass through the control plane.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TlsCertificate } from '../sidecar/proxy/config/types.ts';
import type { CertificateMaterial, CertificateResolver } from '../sidecar/proxy/http/server-tls.ts';

const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** A resolver reading `<dir>/<name>.crt` and `<dir>/<name>.key` for certificate `<ns>/<name>`. */
export function certDirResolver(dir: string | undefined): CertificateResolver {
  return (cert: TlsCertificate): CertificateMaterial => {
    const name = cert.name.slice(cert.name.lastIndexOf('/') + 1);
    if (dir === undefined) throw new Error(`no --cert-dir to read ${name}.crt and ${name}.key from`);
    if (!FILE_NAME.test(name)) throw new Error(`${JSON.stringify(name)} is not a usable file name`);
    const read = (file: string): string => {
      try {
        return readFileSync(join(dir, file), 'utf8');
      } catch (err) {
        throw new Error(
          `cannot read ${join(dir, file)}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
        );
      }
    };
    return { certChainPem: read(`${name}.crt`), privateKeyPem: read(`${name}.key`) };
  };
}
