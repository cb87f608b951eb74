/**
 * The `weft.v1.Identity` gRPC service (served on the discovery port, over TLS): `Issue` signs a
 * workload certificate for the caller's AUTHENTICATED identity.
 *
 * Authentication, in order:
 * 1. a join token in the request → the token's binding (tokens.ts: exists, secret matches,
 *    not revoked, not expired);
 * 2. no token → the client certificate of the TLS connection (renewal): it must have verified
 *    against the bundle during the handshake (grpc-js only exposes verified peers) and is checked
 *    again here: a leaf, unexpired, chaining to the current bundle, one SPIFFE ID in this trust
 *    domain → that ID's namespace and service account.
 * The CSR is parsed only after authentication; its names are ignored (authority.ts).
 *
 * Errors: UNAUTHENTICATED (no credentials, unknown / expired / revoked / malformed token, a
 * certificate that does not verify), INVALID_ARGUMENT (bad CSR), UNAVAILABLE (the CA cannot sign
 * or the store failed), each with a message that says which.
 *
 * Metrics (when a registry is given): `weft_cp_certificates_issued_total{via}`,
 * `weft_cp_certificate_requests_denied_total{reason}`.
 */
import {
  type ServerErrorResponse,
  type ServiceDefinition,
  type sendUnaryData,
  status,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import pino, { type Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { CaUnavailableError, type CertificateAuthority } from './authority.ts';
import { CsrError } from './issue.ts';
import { type IssueResponseMessage, type IssueServerCall, identityServiceDefinition } from './proto.ts';
import type { WorkloadIdentity } from './spiffe.ts';
import { type JoinTokens, TokenError } from './tokens.ts';

export interface IdentityServiceOptions {
  readonly ca: CertificateAuthority;
  readonly tokens: JoinTokens;
  readonly logger?: Logger;
  /** Where the issuance metrics go (default: none). */
  readonly registry?: Registry;
}

/** A service to register on a grpc-js Server (see DiscoveryServer's `extraServices`). */
export interface GrpcService {
  readonly definition: ServiceDefinition;
  readonly implementation: UntypedServiceImplementation;
}

/** A refusal with its gRPC status and metric reason. */
class Refusal extends Error {
  readonly code: status;
  readonly reason: string;
  constructor(code: status, reason: string, message: string) {
    super(message);
    this.code = code;
    this.reason = reason;
  }
}

const NO_CREDENTIALS =
  'no credentials: send a join token, or renew over TLS with a valid mesh certificate (this one is missing, expired or not from this mesh)';

/** The Identity service over `options.ca` and `options.tokens`. */
export function identityService(options: IdentityServiceOptions): GrpcService {
  const log = (options.logger ?? pino({ level: 'silent' })).child({ component: 'identity' });
  const registers = options.registry === undefined ? [] : [options.registry];
  const issued = new Counter({
    name: 'weft_cp_certificates_issued_total',
    help: 'Workload certificates issued, by how the caller authenticated (token | certificate).',
    labelNames: ['via'],
    registers,
  });
  const denied = new Counter({
    name: 'weft_cp_certificate_requests_denied_total',
    help: 'Certificate requests refused, by reason.',
    labelNames: ['reason'],
    registers,
  });

  async function authenticate(
    call: IssueServerCall,
  ): Promise<{ identity: WorkloadIdentity; via: 'token' | 'certificate'; tokenId?: string }> {
    const token = call.request.token ?? '';
    if (token !== '') {
      try {
        const { tokenId, ...identity } = await options.tokens.authenticate(token);
        return { identity, via: 'token', tokenId };
      } catch (err) {
        if (err instanceof TokenError)
          throw new Refusal(status.UNAUTHENTICATED, `token_${err.reason}`, err.message);
        throw err;
      }
    }
    const peer = call.getAuthContext()?.sslPeerCertificate;
    if (peer?.raw === undefined) throw new Refusal(status.UNAUTHENTICATED, 'no_credentials', NO_CREDENTIALS);
    try {
      const id = options.ca.verifyPeer(peer.raw);
      return { identity: { namespace: id.namespace, serviceAccount: id.serviceAccount }, via: 'certificate' };
    } catch (err) {
      throw new Refusal(
        status.UNAUTHENTICATED,
        'certificate',
        `the client certificate does not authenticate: ${(err as Error).message}`,
      );
    }
  }

  async function issue(call: IssueServerCall): Promise<IssueResponseMessage> {
    const { identity, via, tokenId } = await authenticate(call);
    try {
      const cert = await options.ca.issue(call.request.csrPem ?? '', identity);
      issued.inc({ via });
      log.info(
        {
          spiffeId: cert.spiffeId,
          via,
          tokenId,
          serial: cert.serialNumber,
          expiresAt: new Date(cert.expiresAtMs),
        },
        'issued a workload certificate',
      );
      return {
        certificateChainPem: cert.certificateChainPem,
        trustBundlePem: [...cert.trustBundlePem],
        spiffeId: cert.spiffeId,
        expiresAtMs: cert.expiresAtMs,
        trustDomain: cert.trustDomain,
      };
    } catch (err) {
      if (err instanceof CsrError) throw new Refusal(status.INVALID_ARGUMENT, 'csr', err.message);
      if (err instanceof CaUnavailableError)
        throw new Refusal(status.UNAVAILABLE, 'ca_unavailable', err.message);
      throw err;
    }
  }

  return {
    definition: identityServiceDefinition(),
    implementation: {
      Issue: (call: IssueServerCall, callback: sendUnaryData<IssueResponseMessage>) => {
        issue(call).then(
          (response) => callback(null, response),
          (err: unknown) => {
            const refusal =
              err instanceof Refusal
                ? err
                : new Refusal(status.UNAVAILABLE, 'internal', `cannot issue now: ${(err as Error).message}`);
            if (!(err instanceof Refusal)) log.error({ err }, 'certificate issuance failed');
            else log.warn({ reason: refusal.reason, peer: call.getPeer() }, refusal.message);
            denied.inc({ reason: refusal.reason });
            const error: ServerErrorResponse = Object.assign(new Error(refusal.message), {
              code: refusal.code,
              details: refusal.message,
            });
            callback(error);
          },
        );
      },
    },
  };
}
