/**
 * The demo's edge credentials (`npm start`): a fresh signing key and API key each run, and the two
 * SecurityPolicies that check them on the edge gateway's routes of deploy/examples/mesh.yaml:
 *
 * - HTTPRoute `web-jwt` (`/jwt/...` → web): JWT (RFC 7519) with an inline JWKS (`localJWKS`) holding
 *   the public half of an ES256 key pair made here with `jose`; the demo token is signed with the
 *   private half (issuer {@link DEMO_ISSUER}, audience `web`, `exp` in 1 h, scope `demo:read`), and
 *   the policy allows only tokens with that scope.
 * - HTTPRoute `web-partner` (`/partner/...` → web): API keys (`apiKeyAuth`), client `partner` with one
 *   random key stored as its SHA-256 digest (`hashApiKey`, what `weft apikey create` stores).
 *   mesh.yaml's RateLimitPolicy `partner-limits` caps each client of that route at 5 requests/s.
 *
 * The private key and the plain API key live only in this process: they are printed once for the
 * example curl commands and never written to disk.
 */
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { hashApiKey } from '../../gateway/filters/auth/apikey.ts';

/** The `iss` of the demo tokens and of the JWT provider. */
export const DEMO_ISSUER = 'https://demo.weft.local/';
/** The `aud` of the demo tokens and the provider's only audience. */
export const DEMO_AUDIENCE = 'web';
/** The scope the JWT route's authorization rule asks for. */
export const DEMO_SCOPE = 'demo:read';

/** What {@link makeEdgeAuth} returns: the policies to apply and the credentials to print. */
export interface EdgeAuth {
  /** Two SecurityPolicy documents (YAML, `---`-separated), `web-jwt-auth` and `web-partner-auth`. */
  readonly yaml: string;
  /** A compact JWS (ES256) valid for one hour from now. */
  readonly token: string;
  /** The partner's API key in clear (base64url, 32 random bytes). */
  readonly apiKey: string;
}

/** Makes a key pair, a signed demo token, a random API key and the SecurityPolicies for them. */
export async function makeEdgeAuth(): Promise<EdgeAuth> {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'demo-1', alg: 'ES256', use: 'sig' };
  const token = await new SignJWT({ scope: DEMO_SCOPE })
    .setProtectedHeader({ alg: 'ES256', kid: 'demo-1', typ: 'JWT' })
    .setIssuer(DEMO_ISSUER)
    .setAudience(DEMO_AUDIENCE)
    .setSubject('demo-user')
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(privateKey);
  const apiKey = randomBytes(32).toString('base64url');
  const yaml = `apiVersion: weft.dev/v1alpha1
kind: SecurityPolicy
metadata: { name: web-jwt-auth }
spec:
  targetRefs: [{ group: gateway.networking.k8s.io, kind: HTTPRoute, name: web-jwt }]
  jwt:
    providers:
      - name: demo
        issuer: ${DEMO_ISSUER}
        audiences: [${DEMO_AUDIENCE}]
        localJWKS: { type: Inline, inline: '${JSON.stringify({ keys: [jwk] })}' }
        algorithms: [ES256]
        claimToHeaders: [{ header: x-user, claim: sub }]
  authorization:
    defaultAction: Deny
    rules:
      - { name: readers, action: Allow, principal: { jwt: { provider: demo, scopes: [${DEMO_SCOPE}] } } }
---
apiVersion: weft.dev/v1alpha1
kind: SecurityPolicy
metadata: { name: web-partner-auth }
spec:
  targetRefs: [{ group: gateway.networking.k8s.io, kind: HTTPRoute, name: web-partner }]
  apiKeyAuth:
    clients:
      - id: partner
        plan: demo
        keys: [{ id: k1, sha256: ${hashApiKey(apiKey)} }]
    forwardClientIDHeader: x-client-id
    sanitize: true
`;
  return { yaml, token, apiKey };
}
