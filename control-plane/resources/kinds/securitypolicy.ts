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
 *   apiKeyAuth:
 *     credentialRefs: [{name: api-keys}]               # Secrets: client ID → key
 *     extractFrom: [{headers: [x-api-key]}]
 *     forwardClientIDHeader: x-client-id
 *   authorization:
 *     defaultAction: Deny                              # Allow | Deny, default Deny
 *     rules: [{name: office, action: Allow, principal: {clientCIDRs: [10.0.0.0/8]}}]
 *   cors: {allowOrigins: ["https://*.example.com"], allowMethods: [GET, POST], maxAge: 10m}
 * ```
 * Rules: at least one of jwt, apiKeyAuth, authorization, cors; a provider has exactly one of
 * remoteJWKS (an http(s) URI) and localJWKS (a JSON Web Key Set with a `keys` list); an
 * authorization rule's jwt.provider names a provider of this policy.
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

const apiKeyAuth = obj({
  credentialRefs: list(
    obj({
      group: withDefault(str({ maxLength: 253 }), ''),
      kind: withDefault(enumOf('Secret'), 'Secret'),
      name: text(),
      namespace: optional(text(63)),
    }),
    { minItems: 1, maxItems: 16 },
  ),
  extractFrom: list(
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
  forwardClientIDHeader: optional(headerName),
  sanitize: optional(bool()),
});

const authorization = obj({
  defaultAction: withDefault(enumOf('Allow', 'Deny'), 'Deny'),
  rules: optional(
    list(
      obj({
        name: optional(text()),
        action: enumOf('Allow', 'Deny'),
        principal: obj(
          {
            clientCIDRs: names(cidr, 256),
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
                ? issues.add(path, 'set at least one of clientCIDRs, jwt')
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
