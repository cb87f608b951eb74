/**
 * Upstream mTLS: the undici `connect` function of an endpoint whose cluster has `tls.enabled`.
 * Each new connection reads the proxy's current TLS material (so a rotated certificate is used
 * from the next connection on), presents our certificate chain, verifies the peer's chain against
 * the trust bundle (Node/OpenSSL, RFC 5280 §6) and then the peer's SVID: exactly one URI SAN, not
 * a CA, and equal — exactly, as a string — to the endpoint's expected SPIFFE ID (a valid mesh
 * certificate of another service is refused).
 *
 * Invariants:
 * - no TLS session is ever resumed (Node skips `checkServerIdentity` on resumption, and a session
 *   would outlive a rotation), so every connection is fully verified; connections themselves are
 *   pooled by undici and reused, so steady state makes no new handshakes;
 * - ALPN offers exactly the protocol the cluster speaks (`alpn`: `http/1.1` for HTTP1 clusters, `h2`
 *   for HTTP2 ones, RFC 7301), so a peer cannot pick a protocol the pool would not speak; an HTTP2
 *   connection whose peer did not select `h2` fails as an `UpstreamTlsError`;
 * - a failure after the TCP connect and before the handshake completes is reported as an
 *   `UpstreamTlsError` (code `WEFT_UPSTREAM_TLS`) whose message names the endpoint and the reason
 *   (expected vs presented SPIFFE ID for a wrong peer); the forwarder answers it with 503
 *   UPSTREAM_CONNECT_FAILURE and that message as the detail. TCP errors keep their own codes.
 *
 * Spec: RFC 8446 (TLS 1.3), SPIFFE X.509-SVID §5 (validation), RFC 7301 (ALPN).
 */
import { connect, type PeerCertificate } from 'node:tls';
import { type buildConnector, errors } from 'undici';
import { PeerIdentityError, publishHandshake, svidSpiffeId, type TlsSource } from '../identity.ts';

/** A failed upstream mTLS handshake (or no certificate to make one with). */
export class UpstreamTlsError extends Error {
  readonly code = 'WEFT_UPSTREAM_TLS';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'UpstreamTlsError';
  }
}

export interface MtlsConnectorOptions {
  /** The proxy's current material, read once per connection. */
  readonly tls: TlsSource;
  /** The SPIFFE ID the endpoint must present, e.g. `spiffe://cluster.local/ns/default/sa/api`. */
  readonly expectedIdentity: string;
  /** TCP connect + TLS handshake deadline (ms). */
  readonly connectTimeoutMs: number;
  /** The one ALPN protocol to offer and require (default `http/1.1`; `h2` for HTTP/2 clusters). */
  readonly alpn?: 'http/1.1' | 'h2';
}

/**
 * Checks a verified peer certificate against the expected SPIFFE ID; returns the error that fails
 * the handshake, or undefined. Exported for tests.
 */
export function checkPeerIdentity(
  cert: Pick<PeerCertificate, 'subjectaltname' | 'ca'>,
  expectedIdentity: string,
  trustDomain: string,
): Error | undefined {
  let presented: string;
  try {
    presented = svidSpiffeId(cert.subjectaltname, cert.ca, trustDomain);
  } catch (err) {
    return err as Error;
  }
  if (presented === expectedIdentity) return undefined;
  return new PeerIdentityError(`the peer presented ${presented}, expected ${expectedIdentity}`);
}

/** An undici connector that opens mTLS connections to one endpoint (see the module header). */
export function createMtlsConnector(options: MtlsConnectorOptions): buildConnector.connector {
  const { tls: source, expectedIdentity, connectTimeoutMs } = options;
  const alpn = options.alpn ?? 'http/1.1';
  const alpnProtocols = [alpn];
  return (target, callback) => {
    const where = `${target.hostname}:${target.port}`;
    const material = source.material;
    if (material === undefined) {
      publishHandshake('upstream', false, 'no workload certificate');
      callback(new UpstreamTlsError(`mTLS to ${where}: this proxy has no workload certificate yet`), null);
      return;
    }
    let done = false;
    let tcpConnected = false;
    const socket = connect({
      host: target.hostname,
      port: Number(target.port),
      secureContext: material.secureContext,
      ALPNProtocols: alpnProtocols,
      rejectUnauthorized: true,
      checkServerIdentity: (_host, cert) => checkPeerIdentity(cert, expectedIdentity, material.trustDomain),
    });
    const finish = (err: Error | undefined): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.off('error', onError);
      if (err === undefined) {
        publishHandshake('upstream', true);
        socket.setKeepAlive(true, 60_000);
        callback(null, socket);
        return;
      }
      socket.destroy();
      if (!tcpConnected || err instanceof errors.ConnectTimeoutError) {
        callback(err, null);
        return;
      }
      publishHandshake('upstream', false, err.message);
      callback(
        new UpstreamTlsError(`mTLS handshake with ${where} failed: ${err.message}`, { cause: err }),
        null,
      );
    };
    const onError = (err: Error): void => finish(err);
    const timer = setTimeout(
      () =>
        finish(new errors.ConnectTimeoutError(`connect to ${where} timed out after ${connectTimeoutMs} ms`)),
      connectTimeoutMs,
    );
    socket.setNoDelay(true);
    socket.once('connect', () => {
      tcpConnected = true;
    });
    socket.once('secureConnect', () =>
      finish(
        alpn === 'h2' && socket.alpnProtocol !== 'h2'
          ? new Error(`the peer did not negotiate h2 by ALPN (got ${String(socket.alpnProtocol)})`)
          : undefined,
      ),
    );
    socket.on('error', onError);
  };
}
