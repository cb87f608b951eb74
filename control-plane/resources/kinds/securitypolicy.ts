/**
 * `SecurityPolicy` (weft.dev/v1alpha1): authentication and access control where traffic enters,
 * after Envoy Gateway's SecurityPolicy (gateway.envoyproxy.io/v1alpha1) with its field names.
 *
 * ```yaml
 * spec:
 *   targetRefs: [{kind: Gateway, name: edge}]          # Gateway, HTTPRoute or GRPCRoute, 1..16
 *   jwt:
 *     providers:                                       # 1..4, names unique
 *     - name: auth0
 *       issuer: https://example.auth0.com/
 *       audiences: [api]
 *       remoteJWKS: {uri: https://example.auth0.com/.well-known/jwks.json}   # or localJWKS: {type: Inline, inline: '{"keys":[…]}'}
 *       claimToHeaders: [{header: x-user, claim: sub}]
 *       extractFrom: {headers: [{name: Authorization, valuePrefix: "Bearer "}]}
 *       algorithms: [RS256]                            # Weft: allowlist (default: every asymmetric one)
 *       clockSkew: 30s                                 # Weft: exp/nbf tolerance, at most 5m
 *   apiKeyAuth:
 *     clients:                                         # Weft: hashed keys (weft apikey create)
 *     - {id: acme, plan: pro, keys: [{id: k1, sha256: <64 hex>, expiresAt: 2030-01-01T00:00:00Z, scopes: [read]}]}
 *     extractFrom: [{headers: [x-api-key]}]            # default x-api-key
 *     forwardClientIDHeader: x-client-id
 *     optional: false                                  # Weft
 *   authorization:
 *     defaultAction: Deny                              # Allow | Deny, default Deny
 *     rules:
 *     - {name: office, action: Allow, principal: {clientCIDRs: [10.0.0.0/8]}}
 *     - {action: Allow, operation: {methods: [POST]}, principal: {apiKey: {scopes: [write]}}}  # apiKey: Weft
 *   cors: {allowOrigins: ["https://*.example.com"], allowMethods: [GET, POST], maxAge: 10m}
 * ```
 * Rules: at least one of jwt, apiKeyAuth, authorization, cors; a provider has exactly one of
 * remoteJWKS (an http(s) URI) and localJWKS (a JSON Web Key Set with a `keys` list); an
 * authorization rule's jwt.provider names a provider of this policy, and a rule on apiKey needs
 * apiKeyAuth; apiKeyAuth needs `clients` (Envoy Gateway's `credentialRefs` to Secrets are refused:
 * Weft has no Secret kind); a key digest appears once per policy.
 */
import { cidr, headerName } from '../names.ts';
import {
  bool,
  duration,
  enumOf,
  exactlyOneOf,
  list,
  obj,
  optional,
  type Schema,
  str,
  withDefault,
} from '../schema.ts';
import type { JWTProvider, SecurityPolicySpec } from '../types.ts';
import type { KindHandler } from './kind.ts';
import { targetRefs } from './policy-common.ts';

const text = (maxLength = 253) => str({ minLength: 1, maxLength });
const names = (item: Schema<string>, maxItems = 16) => optional(list(item, { minItems: 1, maxItems }));

const httpUri = str({
  describe: 'an http or https URI',
  maxLength: 2048,
  rule: (s) => {
    try {
      const u = new URL(s);
      return u.protocol === 'https:' || u.protocol === 'http:' ? undefined : 'must use http or https';
    } catch {
      return 'must be an absolute http or https URI';
    }
  },
});

const jwks = str({
  describe: 'a JSON Web Key Set',
  minLength: 1,
  rule: (s) => {
    try {
      const v: unknown = JSON.parse(s);
      return typeof v === 'object' && v !== null && Array.isArray((v as { keys?: unknown }).keys)
        ? undefined
        : 'must be a JSON object with a "keys" list';
    } catch {
      return 'must be a JSON Web Key Set (JSON with a "keys" list)';
    }
  },
});

const provider: Schema<JWTProvider> = obj(
  {
    name: text(),
    issuer: optional(text()),
    audiences: names(text(), 8),
    remoteJWKS: optional(obj({ uri: httpUri })),
    localJWKS: optional(obj({ type: withDefault(enumOf('Inline'), 'Inline'), inline: jwks })),
    claimToHeaders: optional(list(obj({ header: headerName, claim: text() }), { maxItems: 16 })),
    algorithms: names(
      enumOf(
        'RS256',
        'RS384',
        'RS512',
        'PS256',
        'PS384',
        'PS512',
        'ES256',
        'ES384',
        'ES512',
        'EdDSA',
        'Ed25519',
      ),
      11,
    ),
    clockSkew: optional(duration({ max: '5m' })),
    extractFrom: optional(
      obj({
        headers: optional(
          list(obj({ name: headerName, valuePrefix: optional(str({ maxLength: 253 })) }), {
            minItems: 1,
            maxItems: 8,
          }),
        ),
        cookies: names(text(), 8),
        params: names(text(), 8),
      }),
    ),
  },
  { refine: (p, path, issues) => exactlyOneOf(p, ['remoteJWKS', 'localJWKS'], path, issues) },
);

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Weft's own: the keys of one client, as SHA-256 digests (`weft apikey create` makes them). */
const apiKeyClient = obj({
  id: text(),
  plan: optional(text(63)),
  keys: list(
    obj({
      id: text(63),
      sha256: str({ describe: 'the SHA-256 of the key, 64 lower-case hex digits', pattern: SHA256_HEX }),
      expiresAt: optional(
        str({
          describe: 'an RFC 3339 time such as 2030-01-31T00:00:00Z',
          pattern: /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/,
          rule: (v) => (Number.isNaN(Date.parse(v)) ? 'is not a valid time' : undefined),
        }),
      ),
      scopes: names(text(), 32),
    }),
    { minItems: 1, maxItems: 16, uniqueBy: [{ key: (k) => k.id, what: 'key id', field: 'id' }] },
  ),
});

const apiKeyAuth = obj(
  {
    credentialRefs: optional(
      list(
        obj({
          group: withDefault(str({ maxLength: 253 }), ''),
          kind: withDefault(enumOf('Secret'), 'Secret'),
          name: text(),
          namespace: optional(text(63)),
        }),
        { minItems: 1, maxItems: 16 },
      ),
    ),
    clients: optional(
      list(apiKeyClient, {
        minItems: 1,
        maxItems: 1024,
        uniqueBy: [{ key: (c) => c.id, what: 'client id', field: 'id' }],
      }),
    ),
    extractFrom: optional(
      list(
        obj(
          { headers: names(headerName), params: names(text()), cookies: names(text()) },
          {
            refine: (e, path, issues) =>
              Object.keys(e).length === 0
                ? issues.add(path, 'set at least one of headers, params, cookies')
                : undefined,
          },
        ),
        { minItems: 1, maxItems: 16 },
      ),
    ),
    forwardClientIDHeader: optional(headerName),
    sanitize: optional(bool()),
    optional: optional(bool()),
  },
  {
    refine: (a, path, issues) => {
      if (a.credentialRefs !== undefined) {
        issues.add(
          `${path}.credentialRefs`,
          'Secrets are not supported: list the clients and their hashed keys in clients (weft apikey create)',
        );
      } else if (a.clients === undefined) {
        issues.add(`${path}.clients`, 'is required');
      }
      const digests = new Map<string, string>();
      (a.clients ?? []).forEach((c, i) => {
        c.keys.forEach((k, j) => {
          const at = `${path}.clients[${i}].keys[${j}].sha256`;
          const first = digests.get(k.sha256);
          if (first !== undefined) issues.add(at, `the same key is listed twice (also at ${first})`);
          else digests.set(k.sha256, at);
        });
      });
    },
  },
);

const authorization = obj({
  defaultAction: withDefault(enumOf('Allow', 'Deny'), 'Deny'),
  rules: optional(
    list(
      obj({
        name: optional(text()),
        action: enumOf('Allow', 'Deny'),
        operation: optional(
          obj({
            methods: list(str({ describe: 'an HTTP method', pattern: /^[A-Za-z0-9!#$%&'+.^_`|~-]+$/ }), {
              minItems: 1,
              maxItems: 16,
            }),
          }),
        ),
        principal: obj(
          {
            clientCIDRs: names(cidr, 256),
            apiKey: optional(
              obj({ clients: names(text(), 256), plans: names(text(63), 16), scopes: names(text(), 16) }),
            ),
            jwt: optional(
              obj({
                provider: text(),
                scopes: names(text(), 16),
                claims: optional(
                  list(obj({ name: text(), values: list(text(1024), { minItems: 1, maxItems: 16 }) }), {
                    minItems: 1,
                    maxItems: 16,
                  }),
                ),
              }),
            ),
          },
          {
            refine: (p, path, issues) =>
              Object.keys(p).length === 0
                ? issues.add(path, 'set at least one of clientCIDRs, jwt, apiKey')
                : undefined,
          },
        ),
      }),
      { maxItems: 64, uniqueBy: [{ key: (r) => r.name, what: 'rule name', field: 'name' }] },
    ),
  ),
});

const origin = str({
  describe: 'an origin such as https://app.example.com or https://*.example.com, or *',
  pattern: /^(\*|https?:\/\/(\*\.)?[A-Za-z0-9.-]+(:[0-9]{1,5})?)$/,
});

const cors = obj({
  allowOrigins: names(origin, 64),
  allowMethods: names(
    str({ describe: 'an HTTP method or *', pattern: /^(\*|[A-Za-z0-9!#$%&'+.^_`|~-]+)$/ }),
    16,
  ),
  allowHeaders: names(
    str({ describe: 'a header name or *', pattern: /^(\*|[A-Za-z0-9!#$%&'+.^_`|~-]+)$/ }),
    64,
  ),
  exposeHeaders: names(headerName, 64),
  maxAge: optional(duration()),
  allowCredentials: optional(bool()),
});

export const securityPolicySpecSchema: Schema<SecurityPolicySpec> = obj(
  {
    targetRefs: targetRefs(['Gateway', 'HTTPRoute', 'GRPCRoute']),
    jwt: optional(
      obj({
        providers: list(provider, {
          minItems: 1,
          maxItems: 4,
          uniqueBy: [{ key: (p) => p.name, what: 'provider name', field: 'name' }],
        }),
        optional: optional(bool()),
      }),
    ),
    apiKeyAuth: optional(apiKeyAuth),
    authorization: optional(authorization),
    cors: optional(cors),
  },
  {
    refine: (s, path, issues) => {
      if (!s.jwt && !s.apiKeyAuth && !s.authorization && !s.cors)
        issues.add(path, 'set at least one of jwt, apiKeyAuth, authorization, cors');
      if (s.authorization !== undefined) {
        (s.authorization.rules ?? []).forEach((r, i) => {
          if (r.principal.apiKey !== undefined && s.apiKeyAuth === undefined) {
            issues.add(`${path}.authorization.rules[${i}].principal.apiKey`, 'needs spec.apiKeyAuth');
          }
        });
      }
      const providers = new Set((s.jwt?.providers ?? []).map((p) => p.name));
      (s.authorization?.rules ?? []).forEach((r, i) => {
        const name = r.principal.jwt?.provider;
        if (name !== undefined && !providers.has(name)) {
          issues.add(
            `${path}.authorization.rules[${i}].principal.jwt.provider`,
            `no JWT provider named ${JSON.stringify(name)} in spec.jwt.providers`,
          );
        }
      });
    },
  },
);

export const securityPolicy: KindHandler = {
  check: (spec, _ctx, issues) => securityPolicySpecSchema.check(spec, 'spec', issues),
};
