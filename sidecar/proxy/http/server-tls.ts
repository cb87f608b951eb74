/**
 * TLS termination for clients outside the mesh (a gateway's HTTPS listener): server certificates
 * chosen by SNI, no client certificate, TLS 1.2+ only. The decrypted stream goes to the listener's
 * HTTP server, like a mesh mTLS connection (tls.ts) but without the SPIFFE check.
 *
 * Certificate selection (RFC 6066 §3 server_name): an exact server name first, then the wildcard
 * `*.suffix` with the longest suffix (one or more labels before it, as Gateway API hostnames and
 * the router's virtual hosts read wildcards), then the default certificate (the
 * entry without server names); a client without SNI gets the default, or the first certificate
 * when there is no default. A name that matches nothing and no default: the handshake fails.
 *
 * Protocol floor: `minVersion` TLSv1.2 (default) or TLSv1.3; TLS 1.0/1.1 handshakes are refused
 * with a protocol_version alert (RFC 8996). TLS 1.2 ciphers default to ECDHE with AEAD only
 * (Mozilla "intermediate"), server order preferred. ALPN: h2, then http/1.1 (RFC 7301).
 *
 * `compileServerTls` does all the work that can fail (reading files, parsing PEM, building
 * SecureContexts) so `ProxyCore.apply` can reject a config before anything changes;
 * `TerminatingTls.set` swaps the compiled contexts in for new handshakes.
 */
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import {
  createSecureContext,
  createServer as createTlsServer,
  type SecureContext,
  type SecureContextOptions,
  type TLSSocket,
  type Server as TlsServer,
} from 'node:tls';
import type { ServerTls, TlsCertificate } from '../config/types.ts';
import { publishHandshake } from '../identity.ts';

/** Mozilla "intermediate" TLS 1.2 cipher list: forward secrecy and AEAD only. */
export const DEFAULT_SERVER_CIPHERS =
  'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:' +
  'ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305';

/** PEM material of one certificate. */
export interface CertificateMaterial {
  readonly certChainPem: string;
  readonly privateKeyPem: string;
}

/**
 * Resolves a certificate that carries neither PEM nor file paths (by its name, e.g. from the
 * gateway's `--cert-dir`). Throws an Error saying what is missing.
 */
export type CertificateResolver = (cert: TlsCertificate) => CertificateMaterial;

/** The compiled form of one listener's `serverTls`; immutable. */
export interface CompiledServerTls {
  readonly exact: ReadonlyMap<string, SecureContext>;
  /** Keyed by the suffix after `*.` (e.g. `example.test`). */
  readonly wildcard: ReadonlyMap<string, SecureContext>;
  readonly fallback: SecureContext | undefined;
  readonly noSni: SecureContext;
  /** The server's own context options: the no-SNI certificate, protocol floor and ciphers. */
  readonly serverOptions: SecureContextOptions;
}

const SERVER_NAME = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

function material(cert: TlsCertificate, resolve: CertificateResolver | undefined): CertificateMaterial {
  if (cert.certChainPem || cert.privateKeyPem) {
    if (!cert.certChainPem || !cert.privateKeyPem)
      throw new Error('certChainPem and privateKeyPem go together');
    return { certChainPem: cert.certChainPem, privateKeyPem: cert.privateKeyPem };
  }
  if (cert.certChainFile || cert.privateKeyFile) {
    if (!cert.certChainFile || !cert.privateKeyFile)
      throw new Error('certChainFile and privateKeyFile go together');
    return {
      certChainPem: readFileSync(cert.certChainFile, 'utf8'),
      privateKeyPem: readFileSync(cert.privateKeyFile, 'utf8'),
    };
  }
  if (resolve === undefined) throw new Error('no PEM, no files, and no certificate directory to look in');
  return resolve(cert);
}

/**
 * Compiles `serverTls` against the config's `certificates`.
 * @throws Error naming the field and reason: unknown or unloadable certificate, key not matching
 *   the certificate, bad server name, duplicate server name, unknown minVersion, no certificates.
 */
export function compileServerTls(
  serverTls: ServerTls,
  certificates: readonly TlsCertificate[],
  resolve?: CertificateResolver,
): CompiledServerTls {
  const minVersion = serverTls.minVersion || 'TLSv1.2';
  if (minVersion !== 'TLSv1.2' && minVersion !== 'TLSv1.3')
    throw new Error(`serverTls.minVersion: must be TLSv1.2 or TLSv1.3, got ${JSON.stringify(minVersion)}`);
  const entries = serverTls.certificates ?? [];
  if (entries.length === 0) throw new Error('serverTls.certificates: at least one is required');
  const byName = new Map(certificates.map((c) => [c.name, c]));
  const contexts = new Map<string, { ctx: SecureContext; options: SecureContextOptions }>();
  const compiled = (name: string, field: string): { ctx: SecureContext; options: SecureContextOptions } => {
    const known = contexts.get(name);
    if (known !== undefined) return known;
    const cert = byName.get(name);
    if (cert === undefined) throw new Error(`${field}: no certificate named ${JSON.stringify(name)}`);
    let out: { ctx: SecureContext; options: SecureContextOptions };
    try {
      const m = material(cert, resolve);
      const options: SecureContextOptions = {
        cert: m.certChainPem,
        key: m.privateKeyPem,
        minVersion,
        ciphers: serverTls.ciphers || DEFAULT_SERVER_CIPHERS,
        honorCipherOrder: true,
      };
      out = { ctx: createSecureContext(options), options };
    } catch (err) {
      throw new Error(`certificate ${JSON.stringify(name)}: ${(err as Error).message}`);
    }
    contexts.set(name, out);
    return out;
  };
  const contextFor = (name: string, field: string): SecureContext => compiled(name, field).ctx;
  const firstName = entries[0]!.certificateName;
  const defaultName = entries.find((e) => (e.serverNames ?? []).length === 0)?.certificateName ?? firstName;
  const exact = new Map<string, SecureContext>();
  const wildcard = new Map<string, SecureContext>();
  let fallback: SecureContext | undefined;
  entries.forEach((e, i) => {
    const field = `serverTls.certificates[${i}]`;
    const ctx = contextFor(e.certificateName, `${field}.certificateName`);
    const names = e.serverNames ?? [];
    if (names.length === 0) fallback ??= ctx;
    for (const raw of names) {
      const name = raw.toLowerCase();
      if (!SERVER_NAME.test(name))
        throw new Error(`${field}.serverNames: ${JSON.stringify(raw)} is not a host name or *.suffix`);
      const [map, key] = name.startsWith('*.') ? [wildcard, name.slice(2)] : [exact, name];
      if (map.has(key)) throw new Error(`${field}.serverNames: ${JSON.stringify(raw)} is listed twice`);
      map.set(key, ctx);
    }
  });
  const noSni = compiled(defaultName, 'serverTls.certificates');
  return { exact, wildcard, fallback, noSni: noSni.ctx, serverOptions: noSni.options };
}

/** The context for `servername` (see the module header), or undefined (handshake fails). */
export function selectContext(c: CompiledServerTls, servername: string): SecureContext | undefined {
  if (servername === '') return c.noSni;
  const name = servername.toLowerCase();
  const exact = c.exact.get(name);
  if (exact !== undefined) return exact;
  // Longest suffix first: `*.b.example.test` beats `*.example.test` for `a.b.example.test`.
  for (let dot = name.indexOf('.'); dot > 0; dot = name.indexOf('.', dot + 1)) {
    const wild = c.wildcard.get(name.slice(dot + 1));
    if (wild !== undefined) return wild;
  }
  return c.fallback;
}

export interface TerminatingTlsOptions {
  /** Where a decrypted connection goes: the listener's HTTP server. */
  readonly serve: (socket: TLSSocket) => void;
  /** Limit for the TLS handshake (ms). */
  readonly handshakeTimeoutMs: number;
}

/** TLS termination for one listener; idle (`enabled` false) until `set` gives it certificates. */
export class TerminatingTls {
  readonly #server: TlsServer;
  #compiled: CompiledServerTls | undefined;
  /** Raw TCP sockets in a handshake (destroyed by `destroyAll`). */
  readonly #raw = new Set<Socket>();

  constructor(options: TerminatingTlsOptions) {
    this.#server = createTlsServer({
      ALPNProtocols: ['h2', 'http/1.1'],
      handshakeTimeout: options.handshakeTimeoutMs,
      minVersion: 'TLSv1.2',
      SNICallback: (servername, cb) => {
        const c = this.#compiled;
        const ctx = c === undefined ? undefined : selectContext(c, servername);
        if (ctx === undefined) cb(new Error(`no certificate for server name ${JSON.stringify(servername)}`));
        else cb(null, ctx);
      },
    });
    this.#server.on('secureConnection', (socket: TLSSocket) => {
      publishHandshake('downstream', true);
      options.serve(socket);
    });
    this.#server.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) => {
      publishHandshake('downstream', false, err.code ?? err.message);
      socket.destroy();
    });
  }

  /** True while the listener terminates TLS (compiled certificates are set). */
  get enabled(): boolean {
    return this.#compiled !== undefined;
  }

  /**
   * Installs compiled certificates (or undefined: off) for handshakes from now on. Clients that
   * send no SNI get `noSni`, set as the server's default context.
   */
  set(compiled: CompiledServerTls | undefined): void {
    // The server's own context serves clients without SNI and sets the protocol floor.
    if (compiled !== undefined) this.#server.setSecureContext(compiled.serverOptions);
    this.#compiled = compiled;
  }

  /** Takes a freshly accepted TCP connection. */
  accept(socket: Socket): void {
    this.#raw.add(socket);
    socket.once('close', () => this.#raw.delete(socket));
    this.#server.emit('connection', socket);
  }

  /** Destroys every connection still in a handshake. */
  destroyAll(): void {
    for (const socket of this.#raw) socket.destroy();
  }
}
