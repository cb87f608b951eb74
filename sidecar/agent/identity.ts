/**
 * `IdentityClient`: the sidecar agent's end of `weft.v1.Identity` — its mesh identity (an
 * X.509-SVID) and its renewal.
 *
 * - The key pair is made here (RSA-2048, Node's crypto) and never sent: the control plane gets a
 *   PKCS#10 CSR (built with node-forge) and returns a certificate for the identity it
 *   AUTHENTICATED — a join token the first time, the current certificate (mTLS, no token) on
 *   renewal. Every issuance uses a new key.
 * - The control plane is always reached over TLS and verified against the trust bundle: the
 *   bootstrap bundle (`bundlePem`, e.g. the control plane's `ca-bundle.pem`) until a newer one
 *   arrives (with each certificate, or through `setTrustBundle` from a config snapshot).
 * - Renewal at `renewFraction` (default ½) of the lifetime, ± `jitter` (default 10 %). A failed
 *   renewal is retried with exponential backoff (100 ms doubling to 5 s, ±20 %); once the
 *   certificate has expired, or the control plane no longer accepts it, the join token (when
 *   there is one) authenticates instead.
 * - `start()` resolves with the first identity; transient failures (control plane unreachable)
 *   are retried, a refused credential (UNAUTHENTICATED, INVALID_ARGUMENT) rejects at once.
 * - `channelCredentials()` gives gRPC credentials (trust bundle + current client certificate)
 *   whose new connections always use the newest certificate.
 *
 * Spec: SPIFFE X.509-SVID; RFC 2986 (PKCS#10).
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import {
  type ChannelCredentials,
  credentials as grpcCredentials,
  Metadata,
  type ServiceError,
  status,
} from '@grpc/grpc-js';
import forge from 'node-forge';
import pino, { type Logger } from 'pino';
import {
  MutableCertificateProvider,
  providerChannelCredentials,
} from '../../control-plane/ca/credentials.ts';
import { signCsr } from '../../control-plane/ca/native-sign.ts';
import { generateRsaKeyPair } from '../../control-plane/ca/pki.ts';
import { createIdentityClient, type IssueResponseMessage } from '../../control-plane/ca/proto.ts';
import { Backoff, type BackoffOptions } from './backoff.ts';

/** The workload's current identity. */
export interface WorkloadCertificate {
  /** Leaf first, then intermediates, PEM. */
  readonly certChainPem: string;
  /** PKCS#8 PEM; never leaves this process. */
  readonly keyPem: string;
  /** Every root a peer may chain to. */
  readonly trustBundlePem: readonly string[];
  readonly spiffeId: string;
  /** Leaf notAfter, ms since the epoch. */
  readonly expiresAtMs: number;
  readonly trustDomain: string;
}

export interface IdentityClientOptions {
  /** Control-plane discovery address(es), `host:port` (several: tried in turn, or `a:1,b:2`). */
  readonly address: string | readonly string[];
  /** PEM roots that verify the control plane until a newer bundle arrives. */
  readonly bundlePem: string;
  /** Join token (`<id>.<secret>`) for the first issuance and after the certificate lapsed. */
  readonly token?: string;
  readonly logger?: Logger;
  /** Renew after this fraction of the certificate lifetime, 0 < f < 1 (default 0.5). */
  readonly renewFraction?: number;
  /** Relative jitter of the renewal time, 0..1 (default 0.1: ±10 %). */
  readonly jitter?: number;
  /** Retry backoff after a failed issuance. */
  readonly backoff?: Partial<BackoffOptions>;
  /** Deadline of one Issue call, milliseconds (default 10 s). */
  readonly callTimeoutMs?: number;
  /** Clock, ms since the epoch (default Date.now). */
  readonly now?: () => number;
  /** Random source in [0, 1) for the jitter (default Math.random). */
  readonly random?: () => number;
}

/** A refusal from the control plane that retrying with the same credential will not cure. */
export class IdentityRefusedError extends Error {
  readonly code: status;
  constructor(code: status, message: string) {
    super(message);
    this.name = 'IdentityRefusedError';
    this.code = code;
  }
}

const PERMANENT = new Set<number>([
  status.UNAUTHENTICATED,
  status.INVALID_ARGUMENT,
  status.PERMISSION_DENIED,
]);

/**
 * A PEM PKCS#10 request (RFC 2986) for the key pair, signed sha256WithRSAEncryption with its private
 * key (names are placeholders). The signature is node:crypto's (ca/native-sign.ts): forge's pure-JS
 * RSA would block the proxy's event loop at every renewal.
 */
export function buildCsr(privateKeyPem: string, publicKeyPem: string): string {
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.publicKeyFromPem(publicKeyPem);
  // The control plane ignores the subject; it names the identity itself.
  csr.setSubject([{ name: 'commonName', value: 'weft-workload' }]);
  signCsr(csr, privateKeyPem);
  return forge.pki.certificationRequestToPem(csr).replace(/\r\n/g, '\n');
}

function addressesOf(address: string | readonly string[]): string[] {
  const list = typeof address === 'string' ? address.split(',') : [...address];
  const out = list.map((a) => a.trim()).filter((a) => a !== '');
  if (out.length === 0) throw new Error('IdentityClient: no control-plane address');
  return out;
}

export class IdentityClient {
  readonly #addresses: string[];
  readonly #token: string | undefined;
  readonly #log: Logger;
  readonly #renewFraction: number;
  readonly #jitter: number;
  readonly #backoff: Backoff;
  readonly #callTimeoutMs: number;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #listeners = new Set<(identity: WorkloadCertificate) => void>();
  readonly #provider = new MutableCertificateProvider();
  #trustPem: string;
  #current: WorkloadCertificate | undefined;
  #next = 0;
  #timer: NodeJS.Timeout | undefined;
  #renewing: Promise<WorkloadCertificate> | undefined;
  #wake: (() => void) | undefined;
  #closed = false;

  constructor(options: IdentityClientOptions) {
    this.#addresses = addressesOf(options.address);
    this.#token = options.token || undefined;
    this.#log = (options.logger ?? pino({ level: 'silent' })).child({ component: 'identity' });
    this.#renewFraction = options.renewFraction ?? 0.5;
    if (!(this.#renewFraction > 0 && this.#renewFraction < 1))
      throw new Error('renewFraction must be in (0, 1)');
    this.#jitter = options.jitter ?? 0.1;
    this.#backoff = new Backoff(options.backoff ?? {}, options.random);
    this.#callTimeoutMs = options.callTimeoutMs ?? 10_000;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.#trustPem = options.bundlePem;
    if (!this.#trustPem.includes('-----BEGIN CERTIFICATE-----')) {
      throw new Error('IdentityClient: bundlePem holds no PEM certificate');
    }
    this.#provider.setCa([this.#trustPem]);
  }

  /** The identity now, or undefined before the first issuance. */
  get current(): WorkloadCertificate | undefined {
    return this.#current;
  }

  /**
   * Gets the first identity. Retries while the control plane is unreachable or failing; rejects
   * with IdentityRefusedError when the credential is refused, or when closed.
   */
  start(): Promise<WorkloadCertificate> {
    if (this.#current !== undefined) return Promise.resolve(this.#current);
    return this.#attemptUntilDone(true);
  }

  /**
   * Calls `listener` with every new identity (after `start` and each renewal). Returns a
   * function that unregisters it.
   */
  onIdentity(listener: (identity: WorkloadCertificate) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Renews now (outside the schedule); concurrent calls share one renewal. Rejects like one
   * issuance attempt (no retries).
   */
  renewNow(): Promise<WorkloadCertificate> {
    this.#renewing ??= this.#issueOnce().finally(() => {
      this.#renewing = undefined;
    });
    return this.#renewing;
  }

  /** Trusts `rootsPem` (e.g. a config snapshot's bundle) to verify the control plane from now on. */
  setTrustBundle(rootsPem: readonly string[]): void {
    if (rootsPem.length === 0) return;
    this.#trustPem = rootsPem.join('');
    this.#provider.setCa(rootsPem);
  }

  /**
   * gRPC channel credentials for the control plane (e.g. the discovery stream): TLS verified
   * against the trust bundle, presenting the current client certificate; new connections use
   * the newest certificate. Connections wait for the first identity.
   */
  channelCredentials(): ChannelCredentials {
    return providerChannelCredentials(this.#provider, true);
  }

  /** Stops renewing (a pending `start` rejects). Idempotent. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#wake?.();
  }

  /** Waits `ms`, or less when closed. */
  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    }).finally(() => {
      this.#wake = undefined;
    });
  }

  async #attemptUntilDone(first: boolean): Promise<WorkloadCertificate> {
    for (;;) {
      if (this.#closed) throw new Error('IdentityClient closed');
      try {
        const identity = await this.renewNow();
        this.#backoff.reset();
        return identity;
      } catch (err) {
        if (first && err instanceof IdentityRefusedError) throw err;
        const delay = this.#backoff.next();
        this.#log.warn({ err: (err as Error).message, retryInMs: delay }, 'certificate issuance failed');
        await this.#sleep(delay);
      }
    }
  }

  #schedule(identity: WorkloadCertificate, receivedAtMs: number): void {
    if (this.#closed) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    const lifetime = Math.max(0, identity.expiresAtMs - receivedAtMs);
    const factor = 1 + this.#jitter * (2 * this.#random() - 1);
    const delay = Math.min(Math.max(0, Math.round(lifetime * this.#renewFraction * factor)), 2 ** 31 - 1);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#attemptUntilDone(false).catch((err: unknown) => {
        if (!this.#closed) this.#log.error({ err }, 'certificate renewal stopped');
      });
    }, delay);
    this.#timer.unref?.();
  }

  /** One issuance: by certificate when the current one is still valid, else by token. */
  async #issueOnce(): Promise<WorkloadCertificate> {
    const current = this.#current;
    const certValid = current !== undefined && this.#now() < current.expiresAtMs;
    if (certValid) {
      try {
        return await this.#issue(current);
      } catch (err) {
        if (!(err instanceof IdentityRefusedError) || this.#token === undefined) throw err;
        this.#log.warn(
          { err: err.message },
          'renewal with the current certificate refused; using the join token',
        );
      }
    }
    if (this.#token === undefined) {
      throw new IdentityRefusedError(
        status.UNAUTHENTICATED,
        current === undefined
          ? 'no join token to get a first certificate with'
          : 'the certificate has expired and there is no join token to fall back to',
      );
    }
    return this.#issue(undefined);
  }

  /** Calls Issue once, authenticated by `withCert` (mTLS) or, when undefined, by the token. */
  async #issue(withCert: WorkloadCertificate | undefined): Promise<WorkloadCertificate> {
    const pair = await generateRsaKeyPair();
    const csrPem = buildCsr(pair.privateKeyPem, pair.publicKeyPem);
    const address = this.#addresses[this.#next % this.#addresses.length]!;
    const creds =
      withCert === undefined
        ? grpcCredentials.createSsl(Buffer.from(this.#trustPem))
        : grpcCredentials.createSsl(
            Buffer.from(this.#trustPem),
            Buffer.from(withCert.keyPem),
            Buffer.from(withCert.certChainPem),
          );
    const client = createIdentityClient(address, creds);
    let response: IssueResponseMessage;
    try {
      response = await new Promise<IssueResponseMessage>((resolve, reject) => {
        client.Issue(
          { csrPem, ...(withCert === undefined && this.#token !== undefined && { token: this.#token }) },
          new Metadata(),
          { deadline: Date.now() + this.#callTimeoutMs },
          (err: ServiceError | null, res?: IssueResponseMessage) => {
            if (err) reject(err);
            else resolve(res ?? {});
          },
        );
      });
    } catch (err) {
      const e = err as ServiceError;
      if (PERMANENT.has(e.code)) throw new IdentityRefusedError(e.code, e.details || e.message);
      this.#next++; // try the next replica next time
      throw new Error(`Issue at ${address} failed: ${e.details || e.message}`);
    } finally {
      client.close();
    }
    const identity = this.#accept(response, pair.privateKeyPem);
    this.#log.info(
      {
        spiffeId: identity.spiffeId,
        expiresAt: new Date(identity.expiresAtMs),
        via: withCert ? 'certificate' : 'token',
      },
      'workload certificate issued',
    );
    return identity;
  }

  /** Checks a response against the key it was made for, adopts it and schedules its renewal. */
  #accept(response: IssueResponseMessage, keyPem: string): WorkloadCertificate {
    const chain = response.certificateChainPem ?? '';
    const leafPem = chain.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)?.[0];
    if (leafPem === undefined || !response.spiffeId || !response.expiresAtMs) {
      throw new Error('Issue answered without a certificate, SPIFFE ID or expiry');
    }
    if (!new X509Certificate(leafPem).checkPrivateKey(createPrivateKey(keyPem))) {
      throw new Error('Issue answered with a certificate for another key');
    }
    const identity: WorkloadCertificate = {
      certChainPem: chain,
      keyPem,
      trustBundlePem: [...(response.trustBundlePem ?? [])],
      spiffeId: response.spiffeId,
      expiresAtMs: response.expiresAtMs,
      trustDomain: response.trustDomain ?? '',
    };
    this.#current = identity;
    if (identity.trustBundlePem.length > 0) this.setTrustBundle(identity.trustBundlePem);
    this.#provider.setIdentity(chain, keyPem);
    this.#schedule(identity, this.#now());
    for (const listener of this.#listeners) {
      try {
        listener(identity);
      } catch (err) {
        this.#log.error({ err }, 'identity listener failed');
      }
    }
    return identity;
  }
}
