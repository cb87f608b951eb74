/**
 * gRPC transport credentials whose certificates change while they are in use: the control plane's
 * serving certificate renews and its trust bundle gains and loses roots; a sidecar's client
 * certificate renews. Built on grpc-js certificate providers: new handshakes use the newest
 * certificates at once; established connections keep the ones they were made with.
 *
 * Invariants: a provider delivers its latest CA and identity to a new listener (in a microtask,
 * never synchronously) and to every listener on every change; server credentials REQUEST a client certificate but do not
 * require one (first issuance authenticates with a token), and grpc-js exposes a peer certificate
 * to handlers only when it verified against the bundle. This module loads no forge.
 */
import {
  type ChannelCredentials,
  experimental,
  type ServerCredentials,
  type VerifyOptions,
} from '@grpc/grpc-js';

type CaListener = experimental.CaCertificateUpdateListener;
type IdentityListener = experimental.IdentityCertificateUpdateListener;

/** A certificate provider whose CA roots and identity (chain + key) are set by its owner. */
export class MutableCertificateProvider implements experimental.CertificateProvider {
  readonly #caListeners = new Set<CaListener>();
  readonly #identityListeners = new Set<IdentityListener>();
  #ca: experimental.CaCertificateUpdate | undefined;
  #identity: experimental.IdentityCertificateUpdate | undefined;

  /** Sets the trusted roots (PEM, one or several blocks each). */
  setCa(rootsPem: readonly string[]): void {
    this.#ca = { caCertificate: Buffer.from(rootsPem.join('')) };
    for (const l of this.#caListeners) l(this.#ca);
  }

  /** Sets the certificate chain (leaf first, PEM) and its PKCS#8 PEM private key. */
  setIdentity(certChainPem: string, keyPem: string): void {
    this.#identity = { certificate: Buffer.from(certChainPem), privateKey: Buffer.from(keyPem) };
    for (const l of this.#identityListeners) l(this.#identity);
  }

  addCaCertificateListener(listener: CaListener): void {
    this.#caListeners.add(listener);
    // Asynchronously, as grpc-js's own providers do: its server credentials register the
    // transport's watcher only after adding this listener, and would miss a synchronous call.
    queueMicrotask(() => {
      if (this.#ca !== undefined && this.#caListeners.has(listener)) listener(this.#ca);
    });
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.#caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.#identityListeners.add(listener);
    queueMicrotask(() => {
      if (this.#identity !== undefined && this.#identityListeners.has(listener)) listener(this.#identity);
    });
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.#identityListeners.delete(listener);
  }
}

/**
 * Server credentials over `provider`: TLS with its identity, client certificates requested and
 * verified against its CA roots but optional.
 */
export function providerServerCredentials(provider: MutableCertificateProvider): ServerCredentials {
  // grpc-js 1.14 passes this function's two providers to the constructor in swapped order; one
  // provider serving both roles makes that harmless.
  return experimental.createCertificateProviderServerCredentials(provider, provider, false);
}

/**
 * Channel credentials over `provider`: the server is verified against its CA roots (and its
 * name, unless `verifyOptions` says otherwise); with `presentIdentity` its identity is the client
 * certificate. Connections wait until the provider has what they need.
 */
export function providerChannelCredentials(
  provider: MutableCertificateProvider,
  presentIdentity: boolean,
  verifyOptions: VerifyOptions = {},
): ChannelCredentials {
  return experimental.createCertificateProviderChannelCredentials(
    provider,
    presentIdentity ? provider : null,
    verifyOptions,
  );
}
