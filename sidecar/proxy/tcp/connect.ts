/**
 * One dedicated (never pooled) connection to a cluster endpoint, for byte streams: TCP proxying
 * and upgraded HTTP/1.1 connections (WebSocket).
 *
 * Plain text for a plain cluster; for an mTLS cluster the same checks as the pooled connector
 * (upstream/tls.ts): our current certificate, the peer's chain verified against the trust bundle,
 * then its SPIFFE ID equal to the endpoint's expected identity (`checkPeerIdentity`). The caller
 * picks ALPN and SNI: `weft-tcp` with `<port>.tcp.weft.internal` for opaque TCP (tcp/config.ts),
 * `http/1.1` for an upgrade, whatever the cluster's pools negotiate. No TLS session is resumed.
 *
 * Errors (all mean "could not connect": the caller reports UPSTREAM_CONNECT_FAILURE): the socket's
 * own (ECONNREFUSED, ...), an `UpstreamTlsError` naming the endpoint and the reason (wrong peer
 * identity, no certificate yet, handshake failure), or a timeout after `connectTimeoutMs`.
 */
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls, type TLSSocket } from 'node:tls';
import type { TlsSource } from '../identity.ts';
import { publishHandshake } from '../identity.ts';
import { checkPeerIdentity, UpstreamTlsError } from '../upstream/tls.ts';

export interface StreamConnectOptions {
  /** The endpoint's undici origin, e.g. `http://127.0.0.1:8080`, `https://[::1]:15006`. */
  readonly origin: string;
  /** mTLS: the proxy's certificate source and the SPIFFE ID the endpoint must present. */
  readonly mtls?: { readonly tls: TlsSource; readonly expectedIdentity: string } | undefined;
  /** ALPN protocols offered over mTLS. */
  readonly alpn: readonly string[];
  /** SNI over mTLS (omitted: none). */
  readonly servername?: string | undefined;
  readonly connectTimeoutMs: number;
}

/** Host (brackets removed) and port of an origin. */
function hostPort(origin: string): { host: string; port: number } {
  const url = new URL(origin);
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return { host, port: Number(url.port) };
}

/**
 * Opens the connection; resolves with the connected (and, over mTLS, verified) socket, which is
 * `allowHalfOpen` and has no timeout set. Rejects as the module header says.
 */
export function connectStream(options: StreamConnectOptions): Promise<Socket> {
  const { host, port } = hostPort(options.origin);
  const where = `${host}:${port}`;
  return new Promise<Socket>((resolve, reject) => {
    const mtls = options.mtls;
    let socket: Socket;
    let tcpUp = false;
    if (mtls === undefined) {
      socket = connectTcp({ host, port, allowHalfOpen: true });
    } else {
      const material = mtls.tls.material;
      if (material === undefined) {
        publishHandshake('upstream', false, 'no workload certificate');
        reject(new UpstreamTlsError(`mTLS to ${where}: this proxy has no workload certificate yet`));
        return;
      }
      // The TLS socket takes `allowHalfOpen` from the TCP socket it wraps.
      const raw = connectTcp({ host, port, allowHalfOpen: true });
      raw.once('connect', () => {
        tcpUp = true;
      });
      socket = connectTls({
        socket: raw,
        secureContext: material.secureContext,
        ALPNProtocols: [...options.alpn],
        ...(options.servername !== undefined && { servername: options.servername }),
        rejectUnauthorized: true,
        checkServerIdentity: (_host, cert) =>
          checkPeerIdentity(cert, mtls.expectedIdentity, material.trustDomain),
      });
      raw.once('error', (err) => socket.destroy(err));
    }
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      fail(new Error(`connect to ${where} timed out after ${options.connectTimeoutMs} ms`));
    }, options.connectTimeoutMs);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      if (mtls !== undefined && tcpUp) {
        publishHandshake('upstream', false, err.message);
        reject(new UpstreamTlsError(`mTLS handshake with ${where} failed: ${err.message}`, { cause: err }));
      } else {
        reject(err);
      }
    };
    socket.once('error', fail);
    socket.once(mtls === undefined ? 'connect' : 'secureConnect', () => {
      clearTimeout(timer);
      socket.off('error', fail);
      if (mtls !== undefined) {
        const negotiated = (socket as TLSSocket).alpnProtocol;
        if (typeof negotiated !== 'string' || !options.alpn.includes(negotiated)) {
          fail(new Error(`the peer did not accept ALPN ${options.alpn.join(', ')}`));
          return;
        }
        publishHandshake('upstream', true);
      }
      resolve(socket);
    });
  });
}
