/**
 * One `AuthPolicy` (config.proto) compiled, and its decision for a request. Steps, in order:
 * 1. CORS: a preflight is answered here (cors.ts); an allowed origin's response headers are set.
 * 2. Authentication: JWT (a token must verify with one of the policy's providers; the provider is
 *    picked by the token's `iss`), then API key. A method that is not `optional` requires its
 *    credential; a credential that is present but bad always fails: 401, for JWT with
 *    `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750 §3.1), without a token just
 *    `Bearer realm="weft"`.
 * 3. Authorization (Envoy Gateway SecurityPolicy `authorization`): the first rule whose every
 *    condition holds decides (ALLOW/DENY); none: `defaultAction` (DENY when the policy has rules
 *    and none is given, else ALLOW). A denial is 403 `RBAC_DENIED`; when an ALLOW rule failed
 *    only for the caller's JWT scopes or claims, it carries `WWW-Authenticate: Bearer
 *    error="insufficient_scope"` and the scopes needed (RFC 6750 §3.1).
 * 4. Identity forwarded upstream: `x-weft-principal` (JWT `sub`, else the API-key client id),
 *    `x-weft-auth` (`jwt`, `api-key` or both), `x-weft-client-id` and `x-weft-plan` (API key),
 *    the provider's `claimToHeaders` and `forwardClientIdHeader`.
 */
import { BlockList, isIP } from 'node:net';
import type { JWTPayload } from 'jose';
import type { AuthAction, AuthPolicy, AuthRule } from '../../../sidecar/proxy/config/types.ts';
import { CONTINUE, type FilterResult } from '../../../sidecar/proxy/filters/filter.ts';
import type { RequestContext } from '../../../sidecar/proxy/http/context.ts';
import { TOKEN } from '../../../sidecar/proxy/router/match.ts';
import type { ApiKeyIdentity, CompiledApiKeySet } from './apikey.ts';
import { EdgeAuthConfigError } from './config-error.ts';
import { type CompiledCors, compileCors, isPreflight, preflight, responseHeaders } from './cors.ts';
import {
  type CompiledJwtProvider,
  claimHeaderValue,
  JwtRejection,
  scopesOf,
  unverifiedIssuer,
} from './jwt.ts';
import { extractCredential } from './sources.ts';

/** Headers the edge sets for the caller's identity; always removed from client input. */
export const IDENTITY_HEADERS = Object.freeze([
  'x-weft-principal',
  'x-weft-auth',
  'x-weft-client-id',
  'x-weft-plan',
]);

interface CompiledRule {
  readonly name: string;
  readonly allow: boolean;
  readonly cidrs: BlockList | undefined;
  readonly methods: ReadonlySet<string> | undefined;
  /** Provider name, '*' for any, '' when the rule does not look at JWT. */
  readonly jwtProvider: string;
  readonly jwtScopes: readonly string[];
  readonly jwtClaims: readonly { readonly name: string; readonly values: ReadonlySet<string> }[];
  readonly apiKey: boolean;
  readonly apiKeyScopes: readonly string[];
  readonly apiKeyClients: ReadonlySet<string> | undefined;
  readonly plans: ReadonlySet<string> | undefined;
}

export interface CompiledPolicy {
  readonly name: string;
  readonly cors: CompiledCors | undefined;
  readonly jwt:
    | { readonly providers: readonly CompiledJwtProvider[]; readonly optional: boolean }
    | undefined;
  readonly apiKey:
    | {
        readonly set: CompiledApiKeySet;
        readonly optional: boolean;
        readonly forwardHeader: string;
        readonly sanitize: boolean;
      }
    | undefined;
  readonly rules: readonly CompiledRule[];
  readonly defaultAllow: boolean;
  /** Headers this policy sets upstream (claimToHeaders, forwardClientIdHeader), lower-case. */
  readonly setsHeaders: readonly string[];
}

/** The named providers a policy may refer to. */
export interface ProviderIndex {
  readonly jwt: ReadonlyMap<string, CompiledJwtProvider>;
  readonly apiKeys: ReadonlyMap<string, CompiledApiKeySet>;
}

function compileCidrs(cidrs: readonly string[], field: string): BlockList {
  const list = new BlockList();
  cidrs.forEach((c, i) => {
    const slash = c.indexOf('/');
    const addr = slash === -1 ? c : c.slice(0, slash);
    const family = isIP(addr);
    const bits = family === 4 ? 32 : 128;
    const prefix = slash === -1 ? bits : Number(c.slice(slash + 1));
    if (
      family === 0 ||
      !Number.isInteger(prefix) ||
      prefix < 0 ||
      prefix > bits ||
      (slash !== -1 && c.slice(slash + 1) === '')
    ) {
      throw new EdgeAuthConfigError(
        `${field}[${i}]`,
        `must be a CIDR such as 10.0.0.0/8 or 2001:db8::/32 (got ${JSON.stringify(c)})`,
      );
    }
    list.addSubnet(addr, prefix, family === 4 ? 'ipv4' : 'ipv6');
  });
  return list;
}

function action(a: AuthAction | undefined, field: string): boolean {
  if (a === 'AUTH_ALLOW') return true;
  if (a === 'AUTH_DENY') return false;
  throw new EdgeAuthConfigError(field, 'must be AUTH_ALLOW or AUTH_DENY');
}

function compileRule(r: AuthRule, field: string, policy: AuthPolicy): CompiledRule {
  const has = (l: readonly string[] | undefined) => l !== undefined && l.length > 0;
  if (r.jwtProvider && r.jwtProvider !== '*' && !(policy.jwt?.providers ?? []).includes(r.jwtProvider)) {
    throw new EdgeAuthConfigError(
      `${field}.jwtProvider`,
      `the policy's jwt.providers has no ${JSON.stringify(r.jwtProvider)}`,
    );
  }
  (r.methods ?? []).forEach((m, i) => {
    if (!TOKEN.test(m))
      throw new EdgeAuthConfigError(`${field}.methods[${i}]`, `must be a method (got ${JSON.stringify(m)})`);
  });
  const usesJwt = !!r.jwtProvider || has(r.jwtScopes) || (r.jwtClaims ?? []).length > 0;
  const usesKey = r.apiKey === true || has(r.apiKeyScopes) || has(r.apiKeyClients) || has(r.plans);
  if (usesJwt && policy.jwt === undefined)
    throw new EdgeAuthConfigError(field, 'looks at JWT but the policy has no jwt');
  if (usesKey && policy.apiKey === undefined)
    throw new EdgeAuthConfigError(field, 'looks at API keys but the policy has no apiKey');
  return {
    name: r.name || field,
    allow: action(r.action, `${field}.action`),
    cidrs: has(r.clientCidrs) ? compileCidrs(r.clientCidrs ?? [], `${field}.clientCidrs`) : undefined,
    methods: has(r.methods) ? new Set(r.methods) : undefined,
    jwtProvider: r.jwtProvider || (usesJwt ? '*' : ''),
    jwtScopes: r.jwtScopes ?? [],
    jwtClaims: (r.jwtClaims ?? []).map((c, i) => {
      if (!c.name) throw new EdgeAuthConfigError(`${field}.jwtClaims[${i}].name`, 'is required');
      return { name: c.name, values: new Set(c.values ?? []) };
    }),
    apiKey: usesKey,
    apiKeyScopes: r.apiKeyScopes ?? [],
    apiKeyClients: has(r.apiKeyClients) ? new Set(r.apiKeyClients) : undefined,
    plans: has(r.plans) ? new Set(r.plans) : undefined,
  };
}

/**
 * Compiles `policy`; `field` names it (`auth` of a listener, `routes[…].auth`).
 * @throws EdgeAuthConfigError for an unknown provider or key set, a rule without an action, a bad
 *   CIDR, method or CORS value, or a rule about a credential the policy does not ask for.
 */
export function compilePolicy(policy: AuthPolicy, field: string, index: ProviderIndex): CompiledPolicy {
  const setsHeaders: string[] = [];
  let jwt: CompiledPolicy['jwt'];
  if (policy.jwt !== undefined) {
    const names = policy.jwt.providers ?? [];
    if (names.length === 0)
      throw new EdgeAuthConfigError(`${field}.jwt.providers`, 'name at least one provider');
    const providers = names.map((n, i) => {
      const p = index.jwt.get(n);
      if (p === undefined) {
        throw new EdgeAuthConfigError(
          `${field}.jwt.providers[${i}]`,
          `no JwtProvider named ${JSON.stringify(n)} in authProviders`,
        );
      }
      for (const c of p.claimToHeaders) setsHeaders.push(c.header);
      return p;
    });
    jwt = { providers, optional: policy.jwt.optional === true };
  }
  let apiKey: CompiledPolicy['apiKey'];
  if (policy.apiKey !== undefined) {
    const set = index.apiKeys.get(policy.apiKey.keySet);
    if (set === undefined) {
      throw new EdgeAuthConfigError(
        `${field}.apiKey.keySet`,
        `no ApiKeySet named ${JSON.stringify(policy.apiKey.keySet)} in authProviders`,
      );
    }
    const forwardHeader = (policy.apiKey.forwardClientIdHeader ?? '').toLowerCase();
    if (forwardHeader !== '' && !TOKEN.test(forwardHeader)) {
      throw new EdgeAuthConfigError(`${field}.apiKey.forwardClientIdHeader`, 'must be a header name');
    }
    if (forwardHeader !== '') setsHeaders.push(forwardHeader);
    apiKey = {
      set,
      optional: policy.apiKey.optional === true,
      forwardHeader,
      sanitize: policy.apiKey.sanitize === true,
    };
  }
  const rules = (policy.rules ?? []).map((r, i) => compileRule(r, `${field}.rules[${i}]`, policy));
  const dflt = policy.defaultAction ?? 'AUTH_ACTION_UNSPECIFIED';
  return {
    name: policy.name || field,
    cors: policy.cors === undefined ? undefined : compileCors(policy.cors, `${field}.cors`),
    jwt,
    apiKey,
    rules,
    defaultAllow: dflt === 'AUTH_ACTION_UNSPECIFIED' ? rules.length === 0 : dflt === 'AUTH_ALLOW',
    setsHeaders,
  };
}

// ---- deciding --------------------------------------------------------------------------------

/** Who the caller proved to be. */
interface Caller {
  jwtProvider: CompiledJwtProvider | undefined;
  claims: JWTPayload | undefined;
  scopes: ReadonlySet<string> | undefined;
  key: ApiKeyIdentity | undefined;
}

const Outcome = { Match: 0, NoMatch: 1, Scope: 2 } as const;
type Outcome = (typeof Outcome)[keyof typeof Outcome];

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function ipFamily(addr: string): 'ipv4' | 'ipv6' | undefined {
  const f = isIP(addr);
  return f === 4 ? 'ipv4' : f === 6 ? 'ipv6' : undefined;
}

function claimHolds(claims: JWTPayload, name: string, values: ReadonlySet<string>): boolean {
  const v = claims[name];
  if (v === undefined) return false;
  if (values.size === 0) return true;
  if (Array.isArray(v)) return v.some((x) => values.has(String(x)));
  return values.has(String(v));
}

function ruleOutcome(r: CompiledRule, ctx: RequestContext, caller: Caller): Outcome {
  if (r.cidrs !== undefined) {
    const family = ipFamily(ctx.clientAddress);
    if (family === undefined || !r.cidrs.check(ctx.clientAddress, family)) return Outcome.NoMatch;
  }
  if (r.methods !== undefined && !r.methods.has(ctx.req.method ?? '')) return Outcome.NoMatch;
  if (r.apiKey) {
    const key = caller.key;
    if (key === undefined) return Outcome.NoMatch;
    if (r.apiKeyClients !== undefined && !r.apiKeyClients.has(key.clientId)) return Outcome.NoMatch;
    if (r.plans !== undefined && !r.plans.has(key.plan)) return Outcome.NoMatch;
    for (const s of r.apiKeyScopes) if (!key.scopes.has(s)) return Outcome.NoMatch;
  }
  if (r.jwtProvider !== '') {
    const p = caller.jwtProvider;
    if (p === undefined || (r.jwtProvider !== '*' && p.name !== r.jwtProvider)) return Outcome.NoMatch;
    const claims = caller.claims as JWTPayload;
    for (const s of r.jwtScopes) if (!caller.scopes?.has(s)) return Outcome.Scope;
    for (const c of r.jwtClaims) if (!claimHolds(claims, c.name, c.values)) return Outcome.Scope;
  }
  return Outcome.Match;
}

const BEARER_CHALLENGE = 'Bearer realm="weft"';

/** 401 with an RFC 6750 challenge; the header goes on the response before the local reply. */
function unauthenticated(ctx: RequestContext, challenge: string | undefined, detail: string): FilterResult {
  if (challenge !== undefined) ctx.res.setHeader('www-authenticate', challenge);
  return { kind: 'error', error: 'UNAUTHENTICATED', detail };
}

function invalidToken(ctx: RequestContext, description: string): FilterResult {
  return unauthenticated(
    ctx,
    `Bearer realm="weft", error="invalid_token", error_description="${description}"`,
    `invalid token: ${description}`,
  );
}

/** Authenticates with JWT: the caller, or a failure to answer with. */
async function authenticateJwt(
  policy: CompiledPolicy,
  jwt: NonNullable<CompiledPolicy['jwt']>,
  ctx: RequestContext,
  caller: Caller,
): Promise<FilterResult> {
  const rr = ctx.routeRequest;
  const headers = ctx.req.headers;
  const query = rr?.query ?? '';
  let rejection: string | undefined;
  let seen = false;
  for (const p of jwt.providers) {
    const found = extractCredential(p.sources, headers, query);
    if (found === undefined) continue;
    seen = true;
    if (p.issuer !== undefined && jwt.providers.length > 1 && unverifiedIssuer(found.value) !== p.issuer) {
      rejection ??= 'invalid "iss" claim';
      continue;
    }
    try {
      const claims = await p.verify(found.value);
      caller.jwtProvider = p;
      caller.claims = claims;
      caller.scopes = scopesOf(claims);
      return CONTINUE;
    } catch (err) {
      rejection = err instanceof JwtRejection ? err.description : 'malformed token';
    }
  }
  if (!seen) {
    return jwt.optional
      ? CONTINUE
      : unauthenticated(ctx, BEARER_CHALLENGE, `${policy.name}: bearer token required`);
  }
  return invalidToken(ctx, rejection ?? 'malformed token');
}

function authenticateKey(
  policy: CompiledPolicy,
  apiKey: NonNullable<CompiledPolicy['apiKey']>,
  ctx: RequestContext,
  caller: Caller,
): FilterResult {
  const found = extractCredential(apiKey.set.sources, ctx.req.headers, ctx.routeRequest?.query ?? '');
  if (found === undefined) {
    return apiKey.optional ? CONTINUE : unauthenticated(ctx, undefined, `${policy.name}: API key required`);
  }
  const result = apiKey.set.check(found.value, Date.now());
  if (!result.ok) return unauthenticated(ctx, undefined, `invalid API key: ${result.reason}`);
  caller.key = result.identity;
  if (apiKey.sanitize && found.source.header !== '') delete ctx.upstreamHeaders[found.source.header];
  return CONTINUE;
}

function authorize(policy: CompiledPolicy, ctx: RequestContext, caller: Caller): FilterResult {
  let missingScopes: readonly string[] | undefined;
  for (const r of policy.rules) {
    const outcome = ruleOutcome(r, ctx, caller);
    if (outcome === Outcome.Match) {
      if (r.allow) return CONTINUE;
      return { kind: 'error', error: 'RBAC_DENIED', detail: r.name };
    }
    if (outcome === Outcome.Scope && r.allow) missingScopes ??= r.jwtScopes;
  }
  if (policy.defaultAllow) return CONTINUE;
  if (missingScopes !== undefined) {
    const scope = missingScopes.length > 0 ? `, scope="${missingScopes.join(' ')}"` : '';
    ctx.res.setHeader('www-authenticate', `Bearer realm="weft", error="insufficient_scope"${scope}`);
    return { kind: 'error', error: 'RBAC_DENIED', detail: 'insufficient_scope' };
  }
  return { kind: 'error', error: 'RBAC_DENIED', detail: `${policy.name}: no rule allows the request` };
}

function forwardIdentity(policy: CompiledPolicy, ctx: RequestContext, caller: Caller): void {
  const h = ctx.upstreamHeaders;
  const claims = caller.claims;
  const key = caller.key;
  if (claims !== undefined && caller.jwtProvider !== undefined) {
    if (typeof claims.sub === 'string') h['x-weft-principal'] = claims.sub;
    for (const c of caller.jwtProvider.claimToHeaders) {
      const v = claimHeaderValue(claims, c.claim);
      if (v !== undefined) h[c.header] = v;
    }
  }
  if (key !== undefined) {
    h['x-weft-principal'] ??= key.clientId;
    h['x-weft-client-id'] = key.clientId;
    if (key.plan !== '') h['x-weft-plan'] = key.plan;
    if (policy.apiKey !== undefined && policy.apiKey.forwardHeader !== '')
      h[policy.apiKey.forwardHeader] = key.clientId;
  }
  if (claims !== undefined || key !== undefined) {
    const sub = typeof claims?.sub === 'string' ? claims.sub : '';
    // For the edge limits (rate-limit keys by client id and plan) and anything after this filter.
    ctx.principal = { clientId: key?.clientId ?? sub, plan: key?.plan ?? '', sub, claims: claims ?? {} };
    h['x-weft-auth'] =
      claims !== undefined && key !== undefined ? 'jwt, api-key' : claims !== undefined ? 'jwt' : 'api-key';
  }
}

/** Runs `policy` for one request (its identity headers already stripped). */
export function enforce(policy: CompiledPolicy, ctx: RequestContext): FilterResult | Promise<FilterResult> {
  const { req } = ctx;
  const cors = policy.cors;
  if (cors !== undefined) {
    if (isPreflight(req.method ?? '', req.headers)) {
      const answer = preflight(cors, req.headers);
      return { kind: 'respond', status: answer.status, headers: answer.headers };
    }
    const origin = one(req.headers.origin);
    if (origin !== undefined) {
      const extra = responseHeaders(cors, origin);
      if (extra !== undefined) for (const name in extra) ctx.res.setHeader(name, extra[name] as string);
    }
  }
  const caller: Caller = { jwtProvider: undefined, claims: undefined, scopes: undefined, key: undefined };
  if (policy.jwt === undefined) return afterJwt(policy, ctx, caller);
  return authenticateJwt(policy, policy.jwt, ctx, caller).then((r) =>
    r.kind === 'continue' ? afterJwt(policy, ctx, caller) : r,
  );
}

function afterJwt(policy: CompiledPolicy, ctx: RequestContext, caller: Caller): FilterResult {
  if (policy.apiKey !== undefined) {
    const r = authenticateKey(policy, policy.apiKey, ctx, caller);
    if (r.kind !== 'continue') return r;
  }
  const verdict = authorize(policy, ctx, caller);
  if (verdict.kind === 'continue') forwardIdentity(policy, ctx, caller);
  return verdict;
}
