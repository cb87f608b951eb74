/**
 * The control plane's own TLS certificate for the discovery port (15012), issued by the mesh CA:
 * SPIFFE ID `spiffe://<td>/ns/weft-system/sa/control-plane`, DNS `localhost` and IPs 127.0.0.1 and
 * ::1, plus the bind address and any `--san` extras (each an IP or a DNS name).
 *
 * Invariants: the key is made here and stays in memory. The certificate renews at half its
 * lifetime (new key each time), and at once when its root leaves the trust bundle. A root
 * rotation alone does not reissue it: while the old root is still in the bundle, sidecars that
 * have not learnt the new root yet can still verify the control plane; the certificate moves to
 * the new CA at its next renewal or when the old root is retired, whichever comes first. The
 * roots trusted for client certificates follow the bundle at once.
 */

import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import type { ServerCredentials } from '@grpc/grpc-js';
import pino, { type Logger } from 'pino';
import { type CertificateAuthority, CONTROL_PLANE_IDENTITY } from './authority.ts';
import { MutableCertificateProvider, providerServerCredentials } from './credentials.ts';
import { generateRsaKeyPair } from './pki.ts';

export interface ServingCertificateOptions {
  readonly ca: CertificateAuthority;
  /** Extra names: IP addresses or DNS names (the bind address, `--san`). Wildcard addresses are skipped. */
  readonly names?: readonly string[];
  readonly logger?: Logger;
  /** Fraction of the lifetime after which the certificate renews (default 0.5). */
  readonly renewFraction?: number;
}

/** The current serving certificate. */
export interface ServingIdentity {
  /** Leaf first, then intermediates. */
  readonly certChainPem: string;
  readonly keyPem: string;
  readonly expiresAtMs: number;
  readonly spiffeId: string;
}

/** The DNS and IP SANs for `names` (always localhost, 127.0.0.1, ::1; wildcard binds skipped). */
export function servingSans(names: readonly string[]): { dnsNames: string[]; ipAddresses: string[] } {
  const dnsNames = new Set(['localhost']);
  const ipAddresses = new Set(['127.0.0.1', '::1']);
  for (const raw of names) {
    const name = raw.trim().replace(/^\[|\]$/g, '');
    if (name === '' || name === '0.0.0.0' || name === '::') continue;
    if (isIP(name) !== 0) ipAddresses.add(name);
    else dnsNames.add(name.toLowerCase());
  }
  return { dnsNames: [...dnsNames], ipAddresses: [...ipAddresses] };
}

export class ServingCertificate {
  readonly #ca: CertificateAuthority;
  readonly #sans: { dnsNames: string[]; ipAddresses: string[] };
  readonly #log: Logger;
  readonly #renewFraction: number;
  readonly #provider = new MutableCertificateProvider();
  readonly #unsubscribe: () => void;
  #current: ServingIdentity | undefined;
  #issuedAtMs = 0;
  #timer: NodeJS.Timeout | undefined;
  #renewing: Promise<void> | undefined;
  #closed = false;

  private constructor(options: ServingCertificateOptions) {
    this.#ca = options.ca;
    this.#sans = servingSans(options.names ?? []);
    this.#log = (options.logger ?? pino({ level: 'silent' })).child({ component: 'serving-cert' });
    this.#renewFraction = options.renewFraction ?? 0.5;
    this.#provider.setCa(this.#ca.bundle().rootsPem);
    this.#unsubscribe = this.#ca.onChange(() => this.#onCaChange());
  }

  /**
   * Issues the first serving certificate and keeps it renewed until `close`.
   * @throws CaUnavailableError when the CA cannot sign.
   */
  static async start(options: ServingCertificateOptions): Promise<ServingCertificate> {
    const s = new ServingCertificate(options);
    try {
      await s.renew();
    } catch (err) {
      s.close();
      throw err;
    }
    return s;
  }

  /** The certificate served now. */
  current(): ServingIdentity {
    if (this.#current === undefined) throw new Error('no serving certificate yet');
    return this.#current;
  }

  /** Server credentials that always present the current certificate and trust the current bundle. */
  serverCredentials(): ServerCredentials {
    return providerServerCredentials(this.#provider);
  }

  /** Issues a new certificate (new key) now; concurrent calls share one issuance. */
  renew(): Promise<void> {
    this.#renewing ??= this.#issue().finally(() => {
      this.#renewing = undefined;
    });
    return this.#renewing;
  }

  /** Stops renewing. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#unsubscribe();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #issue(): Promise<void> {
    const pair = await generateRsaKeyPair();
    const issued = await this.#ca.issueForKey(pair.publicKeyPem, CONTROL_PLANE_IDENTITY, this.#sans);
    this.#current = {
      certChainPem: issued.certificateChainPem,
      keyPem: pair.privateKeyPem,
      expiresAtMs: issued.expiresAtMs,
      spiffeId: issued.spiffeId,
    };
    this.#issuedAtMs = Date.now();
    this.#provider.setIdentity(issued.certificateChainPem, pair.privateKeyPem);
    this.#log.info(
      { spiffeId: issued.spiffeId, serial: issued.serialNumber, expiresAt: new Date(issued.expiresAtMs) },
      'serving certificate issued',
    );
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#closed || this.#current === undefined) return;
    const lifetime = Math.max(0, this.#current.expiresAtMs - this.#issuedAtMs);
    const delay = Math.min(Math.max(1000, lifetime * this.#renewFraction), 2 ** 31 - 1);
    this.#timer = setTimeout(() => this.#renewInBackground(), delay);
    this.#timer.unref();
  }

  #renewInBackground(): void {
    if (this.#closed) return;
    this.renew().catch((err: unknown) => {
      this.#log.error({ err }, 'cannot renew the serving certificate; retrying in 5 s');
      if (this.#timer !== undefined) clearTimeout(this.#timer);
      this.#timer = setTimeout(() => this.#renewInBackground(), 5000);
      this.#timer.unref();
    });
  }

  /** Trust follows the bundle at once; the certificate moves when its root leaves the bundle. */
  #onCaChange(): void {
    if (this.#closed) return;
    const roots = this.#ca.bundle().rootsPem;
    this.#provider.setCa(roots);
    const current = this.#current;
    if (current === undefined) return;
    const chain =
      current.certChainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    const top = new X509Certificate(chain[chain.length - 1] ?? current.certChainPem);
    const anchored = roots.some((pem) => {
      const root = new X509Certificate(pem);
      return top.checkIssued(root) && top.verify(root.publicKey);
    });
    if (!anchored) {
      this.#log.info('the serving certificate root left the trust bundle; reissuing');
      this.#renewInBackground();
    }
  }
}
