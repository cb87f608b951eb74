/**
 * The identity side of `weft control-plane --tls`, in one call: opens the mesh CA on the store
 * (creating or loading it, or installing the operator's CA from files), the join tokens, the trust
 * bundle file `<dataDir>/ca-bundle.pem`, the control plane's serving certificate, the discovery
 * port's TLS server credentials and the `weft.v1.Identity` service.
 *
 * Only called with TLS on: the trust bundle in the store is what turns mesh mTLS on in the
 * translator, so without `--tls` the control plane makes no CA at all (plain text everywhere).
 *
 * Invariants: the data directory is mode 0700; the CA key is kept only in the store (sealed when
 * an encryption key file is given) — nothing of it is written to disk here; the bundle file
 * follows every bundle change.
 */
import { chmod, mkdir, readFile } from 'node:fs/promises';
import type { ServerCredentials } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Store } from '../store/types.ts';
import { CertificateAuthority } from './authority.ts';
import { writeBundleFile } from './bundle.ts';
import { readEncryptionKeyFile } from './keystore.ts';
import { checkProvidedCa, type ProvidedCaMaterial } from './pki.ts';
import { type GrpcService, identityService } from './service.ts';
import { ServingCertificate } from './serving.ts';
import { JoinTokens } from './tokens.ts';

export interface IdentitySetupOptions {
  readonly store: Store;
  readonly dataDir: string;
  readonly logger: Logger;
  /** Where issuance metrics go. */
  readonly registry?: Registry;
  /** The bind address (a SAN of the serving certificate unless a wildcard). */
  readonly address: string;
  /** Extra SANs of the serving certificate (IPs or DNS names). */
  readonly sans?: readonly string[];
  /** Operator CA certificate (root or intermediate), key and chain files (PEM). */
  readonly caCertFile?: string;
  readonly caKeyFile?: string;
  readonly caChainFile?: string;
  /** 32-byte key (raw or 64 hex characters) that seals the CA key in the store. */
  readonly caEncryptionKeyFile?: string;
  /** Workload certificate TTL override, milliseconds (tests). */
  readonly certTtlMs?: number;
}

export interface IdentitySetup {
  readonly ca: CertificateAuthority;
  readonly tokens: JoinTokens;
  /** The discovery server's TLS credentials (the serving certificate; client certificates optional). */
  readonly credentials: ServerCredentials;
  /** Services to serve on the discovery port (`weft.v1.Identity`). */
  readonly services: readonly GrpcService[];
  /** `<dataDir>/ca-bundle.pem`. */
  readonly bundleFile: string;
  readonly serving: ServingCertificate;
  /** Stops renewals and watches. */
  close(): Promise<void>;
}

/** Reads the operator's CA files. @throws Error naming the file or what is wrong with the CA. */
async function loadProvided(options: IdentitySetupOptions): Promise<ProvidedCaMaterial | undefined> {
  const { caCertFile, caKeyFile, caChainFile } = options;
  if (caCertFile === undefined && caKeyFile === undefined) {
    if (caChainFile !== undefined) throw new Error('--ca-chain needs --ca-cert and --ca-key');
    return undefined;
  }
  if (caCertFile === undefined || caKeyFile === undefined)
    throw new Error('--ca-cert and --ca-key go together');
  const [cert, key, chain] = await Promise.all([
    readFile(caCertFile, 'utf8'),
    readFile(caKeyFile, 'utf8'),
    caChainFile === undefined ? Promise.resolve('') : readFile(caChainFile, 'utf8'),
  ]);
  return checkProvidedCa(cert, key, chain);
}

/**
 * Starts the identity side (see the module comment).
 * @throws Error for unreadable or invalid CA files or encryption key, a CA key that cannot be
 * opened, or store failures.
 */
export async function startIdentity(options: IdentitySetupOptions): Promise<IdentitySetup> {
  const log = options.logger.child({ component: 'identity-setup' });
  await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
  await chmod(options.dataDir, 0o700);
  const encryptionKey =
    options.caEncryptionKeyFile === undefined
      ? undefined
      : await readEncryptionKeyFile(options.caEncryptionKeyFile, (m) => log.warn(m));
  const provided = await loadProvided(options);
  const ca = await CertificateAuthority.open({
    store: options.store,
    logger: options.logger,
    ...(encryptionKey !== undefined && { encryptionKey }),
    ...(provided !== undefined && { provided }),
    ...(options.certTtlMs !== undefined && { certTtlMs: options.certTtlMs }),
  });
  const tokens = new JoinTokens(options.store);

  const bundleFile = await writeBundleFile(options.dataDir, ca.bundle());
  let writing = Promise.resolve();
  const stopBundleFile = ca.onChange(() => {
    writing = writing
      .then(() => writeBundleFile(options.dataDir, ca.bundle()))
      .then(
        () => log.info({ roots: ca.bundle().rootsPem.length, path: bundleFile }, 'trust bundle file updated'),
        (err: unknown) => log.error({ err }, 'cannot write the trust bundle file'),
      );
  });

  let serving: ServingCertificate;
  try {
    serving = await ServingCertificate.start({
      ca,
      names: [options.address, ...(options.sans ?? [])],
      logger: options.logger,
    });
  } catch (err) {
    stopBundleFile();
    await ca.close();
    throw err;
  }
  const services = [
    identityService({
      ca,
      tokens,
      logger: options.logger,
      ...(options.registry !== undefined && { registry: options.registry }),
    }),
  ];
  return {
    ca,
    tokens,
    credentials: serving.serverCredentials(),
    services,
    bundleFile,
    serving,
    async close() {
      stopBundleFile();
      serving.close();
      await ca.close();
      await writing;
    },
  };
}
