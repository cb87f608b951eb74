/**
 * The RBAC filter (sidecar/proxy/filters/rbac.ts), table-driven: each case is a policy, a request
 * (method, path as received, headers, the peer's principal) and the expected decision with the
 * rule that made it. Istio AuthorizationPolicy semantics: DENY first, then ALLOW when enforced;
 * globs at either end; `not*` lists; namespaces from the principal; normalized paths; headers.
 * Also: compile errors name the field, the filter's results are precomputed, ProxyCore rejects a
 * listener's bad rbac and keeps its last good config, and the translator's golden snapshots
 * cross the discovery wire unchanged, compile, and decide as their descriptions say.
 */
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { discoveryService } from '../../../control-plane/discovery/proto.ts';
import { validateResource } from '../../../control-plane/resources/validate.ts';
import { ConfigError } from '../../../sidecar/proxy/config/errors.ts';
import type { ProxyConfig } from '../../../sidecar/proxy/config/model.ts';
import type { Rbac, RbacRule } from '../../../sidecar/proxy/config/types.ts';
import { CONTINUE } from '../../../sidecar/proxy/filters/filter.ts';
import {
  authorize,
  compileRbac,
  createRbacFilter,
  NO_ALLOW_RULE,
  RBAC_FILTER_NAME,
  RbacConfigError,
} from '../../../sidecar/proxy/filters/rbac.ts';
import { RequestContext } from '../../../sidecar/proxy/http/context.ts';
import { ProxyCore } from '../../../sidecar/proxy/proxy.ts';

const WEB = 'spiffe://cluster.local/ns/shop/sa/web';
const CART = 'spiffe://cluster.local/ns/shop/sa/cart';
const PROBER = 'spiffe://cluster.local/ns/ops/sa/prober';
const TESTER = 'spiffe://cluster.local/ns/test-a/sa/tester';
const PLAINTEXT = '';

interface Request {
  readonly principal?: string;
  readonly method?: string;
  readonly path?: string;
  readonly headers?: IncomingHttpHeaders;
}

interface Case {
  /** What the case shows. */
  readonly name: string;
  readonly rbac: Rbac;
  readonly req: Request;
  readonly allowed: boolean;
  /** The deciding rule's name, `NO_ALLOW_RULE`, or '' when nothing decided (allowed by default). */
  readonly why: string;
}

const rule = (name: string, r: Omit<RbacRule, 'name'> = {}): RbacRule => ({ name, ...r });
const allowOnly = (...allow: RbacRule[]): Rbac => ({ allow, allowEnforced: true });
const denyOnly = (...deny: RbacRule[]): Rbac => ({ deny });

function decide(rbac: Rbac, req: Request) {
  return authorize(
    compileRbac(rbac),
    req.principal ?? WEB,
    req.method ?? 'GET',
    req.path ?? '/',
    req.headers ?? {},
  );
}

const DENY_ADMIN = denyOnly(rule('deny-admin', { to: [{ paths: ['/admin', '/admin/*'] }] }));
const ALLOW_API = allowOnly(rule('allow-api', { to: [{ paths: ['/api/*'] }] }));

const CASES: readonly Case[] = [
  // ---- order and enforcement
  {
    name: 'DENY is evaluated first: a request matching both a DENY and an ALLOW rule is denied',
    rbac: {
      deny: [rule('deny-post', { to: [{ methods: ['POST'] }] })],
      allow: [rule('allow-all')],
      allowEnforced: true,
    },
    req: { method: 'POST' },
    allowed: false,
    why: 'deny-post',
  },
  {
    name: 'no DENY match, an ALLOW match: allowed by that rule',
    rbac: {
      deny: [rule('deny-post', { to: [{ methods: ['POST'] }] })],
      allow: [rule('allow-all')],
      allowEnforced: true,
    },
    req: { method: 'GET' },
    allowed: true,
    why: 'allow-all',
  },
  {
    name: 'the first matching ALLOW rule is the reason',
    rbac: allowOnly(rule('a', { to: [{ methods: ['PUT'] }] }), rule('b'), rule('c')),
    req: {},
    allowed: true,
    why: 'b',
  },
  {
    name: 'ALLOW enforced with no rules denies everything (Istio allow-nothing)',
    rbac: { allowEnforced: true },
    req: {},
    allowed: false,
    why: NO_ALLOW_RULE,
  },
  {
    name: 'an empty config allows everything',
    rbac: {},
    req: { method: 'DELETE', path: '/admin' },
    allowed: true,
    why: '',
  },
  {
    name: 'DENY rules only: what they do not match is allowed',
    rbac: DENY_ADMIN,
    req: { path: '/api/items' },
    allowed: true,
    why: '',
  },
  {
    name: 'ALLOW rules present without allowEnforced are still enforced (never a silent allow-all)',
    rbac: { allow: [rule('allow-get', { to: [{ methods: ['GET'] }] })] },
    req: { method: 'POST' },
    allowed: false,
    why: NO_ALLOW_RULE,
  },
  {
    name: 'an empty DENY rule matches every request',
    rbac: denyOnly(rule('deny-all')),
    req: { principal: PLAINTEXT },
    allowed: false,
    why: 'deny-all',
  },
  {
    name: 'an unnamed rule is reported by its position',
    rbac: { deny: [{ to: [{ methods: ['PATCH'] }] }] },
    req: { method: 'PATCH' },
    allowed: false,
    why: 'rbac.deny[0]',
  },

  // ---- principals and wildcards
  {
    name: 'exact principal, compared without spiffe://',
    rbac: allowOnly(rule('web', { from: [{ principals: ['cluster.local/ns/shop/sa/web'] }] })),
    req: { principal: WEB },
    allowed: true,
    why: 'web',
  },
  {
    name: 'a principal written with spiffe:// in the config matches too',
    rbac: allowOnly(rule('web', { from: [{ principals: [WEB] }] })),
    req: { principal: WEB },
    allowed: true,
    why: 'web',
  },
  {
    name: 'exact principal: another service account does not match',
    rbac: allowOnly(rule('web', { from: [{ principals: ['cluster.local/ns/shop/sa/web'] }] })),
    req: { principal: CART },
    allowed: false,
    why: NO_ALLOW_RULE,
  },
  {
    name: 'prefix glob on principals',
    rbac: allowOnly(rule('shop', { from: [{ principals: ['cluster.local/ns/shop/*'] }] })),
    req: { principal: CART },
    allowed: true,
    why: 'shop',
  },
  {
    name: 'suffix glob on principals (any trust domain, any namespace)',
    rbac: allowOnly(rule('probers', { from: [{ principals: ['*/sa/prober'] }] })),
    req: { principal: PROBER },
    allowed: true,
    why: 'probers',
  },
  {
    name: '"*" principal matches any authenticated peer',
    rbac: allowOnly(rule('mtls', { from: [{ principals: ['*'] }] })),
    req: { principal: TESTER },
    allowed: true,
    why: 'mtls',
  },
  {
    name: '"*" principal does not match a plaintext request (no principal)',
    rbac: allowOnly(rule('mtls', { from: [{ principals: ['*'] }] })),
    req: { principal: PLAINTEXT },
    allowed: false,
    why: NO_ALLOW_RULE,
  },
  {
    name: 'a principal without spiffe:// on the request side is compared as is',
    rbac: allowOnly(rule('web', { from: [{ principals: ['cluster.local/ns/shop/sa/web'] }] })),
    req: { principal: 'cluster.local/ns/shop/sa/web' },
    allowed: true,
    why: 'web',
  },

  // ---- not* fields
  {
    name: 'notPrincipals ["*"] matches plaintext requests only (deny plaintext)',
    rbac: denyOnly(rule('deny-plaintext', { from: [{ notPrincipals: ['*'] }] })),
    req: { principal: PLAINTEXT },
    allowed: false,
    why: 'deny-plaintext',
  },
  {
    name: 'notPrincipals ["*"] does not match an mTLS request',
    rbac: denyOnly(rule('deny-plaintext', { from: [{ notPrincipals: ['*'] }] })),
    req: { principal: WEB },
    allowed: true,
    why: '',
  },
  {
    name: 'principals with notPrincipals: the excluded one is not allowed',
    rbac: allowOnly(
      rule('shop-but-cart', {
        from: [{ principals: ['cluster.local/ns/shop/*'], notPrincipals: ['*/sa/cart'] }],
      }),
    ),
    req: { principal: CART },
    allowed: false,
    why: NO_ALLOW_RULE,
  },
  {
    name: 'principals with notPrincipals: the others are',
    rbac: allowOnly(
      rule('shop-but-cart', {
        from: [{ principals: ['cluster.local/ns/shop/*'], notPrincipals: ['*/sa/cart'] }],
      }),
    ),
    req: { principal: WEB },
    allowed: true,
    why: 'shop-but-cart',
  },
  {
    name: 'notPaths inside an ALLOW operation',
    rbac: allowOnly(rule('api-not-admin', { to: [{ paths: ['/api/*'], notPaths: ['/api/admin*'] }] })),
    req: { path: '/api/admin/users' },
    allowed: false,
    why: NO_ALLOW_RULE,
  },
  {
    name: 'notPaths: other paths under the prefix are allowed',
    rbac: allowOnly(rule('api-not-admin', { to: [{ paths: ['/api/*'], notPaths: ['/api/admin*'] }] })),
    req: { path: '/api/items' },
    allowed: true,
    why: 'api-not-admin',
  },
  {
    name: 'notMethods: writes are denied',
    rbac: denyOnly(rule('read-only', { to: [{ notMethods: ['GET', 'HEAD'] }] })),
    req: { method: 'POST' },
    allowed: false,
    why: 'read-only',
  },
  {
    name: 'notMethods: reads pass',
    rbac: denyOnly(rule('read-only', { to: [{ notMethods: ['GET', 'HEAD'] }] })),
    req: { method: 'HEAD' },
    allowed: true,
    why: '',
  },
  {
    name: 'notNamespaces: a peer from another namespace is denied',
    rbac: denyOnly(rule('outsiders', { from: [{ notNamespaces: ['shop'] }] })),
    req: { principal: PROBER },
    allowed: false,
    why: 'outsiders',
  },
  {
    name: 'notNamespaces: a peer from the namespace passes',
    rbac: denyOnly(rule('outsiders', { from: [{ notNamespaces: ['shop'] }] })),
    req: { principal: CART },
    allowed: true,
    why: '',
  },
  {
    name: 'notNamespaces: a plaintext request has no namespace, so it is an outsider',
    rbac: denyOnly(rule('outsiders', { from: [{ notNamespaces: ['shop'] }] })),
    req: { principal: PLAINTEXT },
    allowed: false,
    why: 'outsiders',
  },

  // ---- namespaces
  {
    name: "namespace taken from the principal's /ns/<ns>/ segment",
    rbac: allowOnly(rule('same-ns', { from: [{ namespaces: ['shop'] }] })),
    req: { principal: WEB },
    allowed: true,
    why: 'same-ns',
  },
  {
    name: 'namespace: exact match, not a prefix of another',
    rbac: allowOnly(rule('same-ns', { from: [{ namespaces: ['sho'] }] })),
    req: { principal: WEB },
    allowed: false,
    why: NO_ALLOW_RULE,
  },
  {
    name: 'namespace prefix glob',
    rbac: denyOnly(rule('test-namespaces', { from: [{ namespaces: ['test-*'] }] })),
    req: { principal: TESTER },
    allowed: false,
    why: 'test-namespaces',
  },
  {
    name: 'a principal without /ns/ has no namespace: namespaces never match',
    rbac: allowOnly(rule('any-ns', { from: [{ namespaces: ['*'] }] })),
    req: { principal: 'spiffe://cluster.local/workload/x' },
    allowed: false,
    why: NO_ALLOW_RULE,
  },

  // ---- structure: AND within, OR across
  {
    name: 'within a source every list must hold (principals AND namespaces)',
    rbac: allowOnly(rule('r', { from: [{ principals: ['*/sa/prober'], namespaces: ['shop'] }] })),
    req: { principal: PROBER },
    allowed: false,
    why: NO_ALLOW_RULE,
  },
  {
    name: 'any source of `from` may match (OR)',
    rbac: allowOnly(rule('r', { from: [{ namespaces: ['shop'] }, { principals: ['*/sa/prober'] }] })),
    req: { principal: PROBER },
    allowed: true,
    why: 'r',
  },
  {
    name: 'within an operation methods AND paths',
    rbac: allowOnly(rule('r', { to: [{ methods: ['GET'], paths: ['/api/*'] }] })),
    req: { method: 'POST', path: '/api/items' },
    allowed: false,
    why: NO_ALLOW_RULE,
  },
  {
    name: 'any operation of `to` may match (OR)',
    rbac: allowOnly(rule('r', { to: [{ methods: ['GET'] }, { methods: ['POST'], paths: ['/api/*'] }] })),
    req: { method: 'POST', path: '/api/items' },
    allowed: true,
    why: 'r',
  },
  {
    name: 'from AND to AND when in one rule',
    rbac: allowOnly(
      rule('r', {
        from: [{ namespaces: ['shop'] }],
        to: [{ methods: ['GET'] }],
        when: [{ header: 'x-tenant', values: ['acme'] }],
      }),
    ),
    req: { principal: WEB, method: 'GET', headers: { 'x-tenant': 'other' } },
    allowed: false,
    why: NO_ALLOW_RULE,
  },

  // ---- methods
  {
    name: 'methods are case-sensitive (RFC 9110 §9.1)',
    rbac: allowOnly(rule('get', { to: [{ methods: ['GET'] }] })),
    req: { method: 'get' },
    allowed: false,
    why: NO_ALLOW_RULE,
  },
  {
    name: 'method "*" matches any method',
    rbac: allowOnly(rule('any', { to: [{ methods: ['*'] }] })),
    req: { method: 'PROPFIND' },
    allowed: true,
    why: 'any',
  },

  // ---- paths: globs and normalization
  {
    name: 'exact path',
    rbac: DENY_ADMIN,
    req: { path: '/admin' },
    allowed: false,
    why: 'deny-admin',
  },
  {
    name: 'prefix glob "/api/*" does not match "/api" itself (Istio)',
    rbac: ALLOW_API,
    req: { path: '/api' },
    allowed: false,
    why: NO_ALLOW_RULE,
  },
  {
    name: 'suffix glob on paths',
    rbac: denyOnly(rule('no-dotfiles', { to: [{ paths: ['*.env'] }] })),
    req: { path: '/app/.env' },
    allowed: false,
    why: 'no-dotfiles',
  },
  {
    name: 'paths are case-sensitive',
    rbac: DENY_ADMIN,
    req: { path: '/ADMIN' },
    allowed: true,
    why: '',
  },
  {
    name: 'normalized: /a/../admin is /admin',
    rbac: DENY_ADMIN,
    req: { path: '/a/../admin' },
    allowed: false,
    why: 'deny-admin',
  },
  {
    name: 'normalized: %2e%2e is a dot segment',
    rbac: DENY_ADMIN,
    req: { path: '/api/%2e%2e/admin' },
    allowed: false,
    why: 'deny-admin',
  },
  {
    name: 'normalized: //admin is /admin',
    rbac: DENY_ADMIN,
    req: { path: '//admin' },
    allowed: false,
    why: 'deny-admin',
  },
  {
    name: 'normalized: ./ segments and encoded unreserved characters',
    rbac: DENY_ADMIN,
    req: { path: '/./ad%6din/./users' },
    allowed: false,
    why: 'deny-admin',
  },
  {
    name: 'normalized: climbing out of an allowed prefix leaves it',
    rbac: ALLOW_API,
    req: { path: '/api/../admin' },
    allowed: false,
    why: NO_ALLOW_RULE,
  },
  {
    name: 'normalized: a dot segment inside the allowed prefix stays inside',
    rbac: ALLOW_API,
    req: { path: '/api/v1/../items' },
    allowed: true,
    why: 'allow-api',
  },
  {
    name: 'an encoded slash is not a separator: /admin%2Fusers is one segment',
    rbac: denyOnly(rule('deny-admin-users', { to: [{ paths: ['/admin/users'] }] })),
    req: { path: '/admin%2Fusers' },
    allowed: true,
    why: '',
  },
  {
    name: 'an encoded slash matches a rule written with %2F (hex case normalized)',
    rbac: denyOnly(rule('deny-encoded', { to: [{ paths: ['/a%2Fb'] }] })),
    req: { path: '/a%2fb' },
    allowed: false,
    why: 'deny-encoded',
  },

  // ---- when: headers
  {
    name: 'when: header value matches (names case-insensitive)',
    rbac: allowOnly(rule('acme', { when: [{ header: 'X-Tenant', values: ['acme'] }] })),
    req: { headers: { 'x-tenant': 'acme' } },
    allowed: true,
    why: 'acme',
  },
  {
    name: 'when: header values are case-sensitive',
    rbac: allowOnly(rule('acme', { when: [{ header: 'x-tenant', values: ['acme'] }] })),
    req: { headers: { 'x-tenant': 'ACME' } },
    allowed: false,
    why: NO_ALLOW_RULE,
  },
  {
    name: 'when: an absent header matches no value',
    rbac: allowOnly(rule('acme', { when: [{ header: 'x-tenant', values: ['*'] }] })),
    req: { headers: {} },
    allowed: false,
    why: NO_ALLOW_RULE,
  },
  {
    name: 'when: "*" matches a present header, even an empty one',
    rbac: allowOnly(rule('has-tenant', { when: [{ header: 'x-tenant', values: ['*'] }] })),
    req: { headers: { 'x-tenant': '' } },
    allowed: true,
    why: 'has-tenant',
  },
  {
    name: 'when: notValues holds for an absent header',
    rbac: allowOnly(rule('not-test', { when: [{ header: 'x-env', notValues: ['test'] }] })),
    req: { headers: {} },
    allowed: true,
    why: 'not-test',
  },
  {
    name: 'when: values AND notValues (prefix minus one value)',
    rbac: denyOnly(
      rule('prod-writes', { when: [{ header: 'x-env', values: ['prod*'], notValues: ['prod-canary'] }] }),
    ),
    req: { headers: { 'x-env': 'prod-canary' } },
    allowed: true,
    why: '',
  },
  {
    name: 'when: values AND notValues, matched',
    rbac: denyOnly(
      rule('prod-writes', { when: [{ header: 'x-env', values: ['prod*'], notValues: ['prod-canary'] }] }),
    ),
    req: { headers: { 'x-env': 'prod-eu' } },
    allowed: false,
    why: 'prod-writes',
  },
  {
    name: 'when: every condition must hold',
    rbac: allowOnly(
      rule('both', {
        when: [
          { header: 'x-a', values: ['1'] },
          { header: 'x-b', values: ['2'] },
        ],
      }),
    ),
    req: { headers: { 'x-a': '1', 'x-b': '3' } },
    allowed: false,
    why: NO_ALLOW_RULE,
  },
  {
    name: 'when: repeated fields are seen joined with ", ", as Node joins them',
    rbac: allowOnly(rule('joined', { when: [{ header: 'x-list', values: ['a, b'] }] })),
    req: { headers: { 'x-list': ['a', 'b'] } },
    allowed: true,
    why: 'joined',
  },
];

describe('RBAC decisions (Istio AuthorizationPolicy semantics)', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const verdict = decide(c.rbac, c.req);
    expect({ allowed: verdict.allowed, why: verdict.reason }).toEqual({ allowed: c.allowed, why: c.why });
    if (c.allowed) expect(verdict.result).toBe(CONTINUE);
    else expect(verdict.result).toEqual({ kind: 'error', error: 'RBAC_DENIED', detail: c.why });
  });
});

describe('compiling', () => {
  it.each([
    [
      'a "*" in the middle of a path',
      { deny: [{ to: [{ paths: ['/a/*/b'] }] }] },
      'rbac.deny[0].to[0].paths[0]: may hold "*" only at its start or end (got "/a/*/b")',
    ],
    [
      'a "*" in the middle of a principal',
      { allow: [{ from: [{}, { notPrincipals: ['cluster.local/*/sa/web'] }] }] },
      'rbac.allow[0].from[1].notPrincipals[0]: may hold "*" only at its start or end (got "cluster.local/*/sa/web")',
    ],
    [
      '"**"',
      { allow: [{ to: [{ methods: ['**'] }] }] },
      'rbac.allow[0].to[0].methods[0]: may hold "*" only at its start or end (got "**")',
    ],
    [
      'an empty value',
      { allow: [{}, { from: [{ namespaces: [''] }] }] },
      'rbac.allow[1].from[0].namespaces[0]: must not be empty',
    ],
    [
      'an invalid header name',
      { deny: [{ when: [{ header: 'x tenant', values: ['a'] }] }] },
      'rbac.deny[0].when[0].header: must be a header name (got "x tenant")',
    ],
    [
      'a condition without values',
      { deny: [{ when: [{ header: 'x-tenant' }] }] },
      'rbac.deny[0].when[0]: set values or notValues',
    ],
  ] satisfies [string, Rbac, string][])('rejects %s, naming the field', (_name, rbac, message) => {
    let error: unknown;
    try {
      compileRbac(rbac);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(RbacConfigError);
    expect((error as Error).message).toBe(message);
  });
});

describe('the filter', () => {
  const listener = {
    name: 'inbound',
    direction: 'INBOUND' as const,
    port: 15006,
    xffNumTrustedHops: 0,
    maxRequestUrlBytes: 8192,
  };

  function ctxFor(method: string, path: string, principal = '', headers: IncomingHttpHeaders = {}) {
    const req = { method, url: path, headers } as unknown as IncomingMessage;
    const ctx = new RequestContext(req, {} as unknown as ServerResponse, listener, 0);
    ctx.routeRequest = { host: 'svc', path, query: '', method, headers };
    ctx.sourcePrincipal = principal;
    return ctx;
  }

  const filter = createRbacFilter({
    deny: [rule('default/no-admin/rule-0', { to: [{ paths: ['/admin*'] }] })],
    allow: [rule('default/shop/rule-0', { from: [{ namespaces: ['shop'] }] })],
    allowEnforced: true,
  });

  it('is named weft.filters.http.rbac', () => {
    expect(filter.name).toBe(RBAC_FILTER_NAME);
    expect(RBAC_FILTER_NAME).toBe('weft.filters.http.rbac');
  });

  it('continues an allowed request, with the shared CONTINUE', () => {
    expect(filter.onRequest?.(ctxFor('GET', '/items', WEB))).toBe(CONTINUE);
  });

  it('fails a denied request with RBAC_DENIED and the rule name, the same frozen result each time', () => {
    const first = filter.onRequest?.(ctxFor('GET', '/x/../admin', WEB));
    expect(first).toEqual({ kind: 'error', error: 'RBAC_DENIED', detail: 'default/no-admin/rule-0' });
    expect(Object.isFrozen(first)).toBe(true);
    expect(filter.onRequest?.(ctxFor('POST', '/admin/users', CART))).toBe(first);
  });

  it('reads the principal set by the mTLS listener: plaintext matches no ALLOW rule by source', () => {
    expect(filter.onRequest?.(ctxFor('GET', '/items', PLAINTEXT))).toEqual({
      kind: 'error',
      error: 'RBAC_DENIED',
      detail: NO_ALLOW_RULE,
    });
  });
});

describe('ProxyCore with a listener rbac', () => {
  const config = (rbac: Rbac): ProxyConfig => ({
    listeners: [{ name: 'inbound', address: '127.0.0.1', port: 0, routeConfigName: 'r', rbac }],
    routes: [{ name: 'r', virtualHosts: [] }],
    clusters: [],
    endpoints: [],
  });

  it('rejects a bad rbac with a ConfigError naming the listener and field, and keeps the last good config', async () => {
    const proxy = new ProxyCore();
    try {
      await proxy.apply(config({ deny: [{ to: [{ paths: ['/ok'] }] }] }), '1');
      let error: unknown;
      try {
        await proxy.apply(config({ deny: [{ to: [{ paths: ['/a*b'] }] }] }), '2');
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).problems).toEqual([
        'Listener inbound: rbac.deny[0].to[0].paths[0]: may hold "*" only at its start or end (got "/a*b")',
      ]);
      expect(proxy.version).toBe('1');
    } finally {
      await proxy.close(0);
    }
  });
});

describe('translated AuthorizationPolicies (test/golden/authz-*) on the proxy', () => {
  const golden = (name: string) => {
    const dir = fileURLToPath(new URL(`../../golden/${name}/`, import.meta.url));
    const input = parse(readFileSync(`${dir}input.yaml`, 'utf8')) as { resources: unknown[] };
    const snapshot = JSON.parse(readFileSync(`${dir}snapshot.json`, 'utf8')) as { config: ProxyConfig };
    const inbound = snapshot.config.listeners.find((l) => l.name === 'inbound');
    return { resources: input.resources, snapshot, rbac: compileRbac(inbound?.rbac ?? {}) };
  };
  const cases = ['authz-allow-principal', 'authz-deny-path', 'authz-namespace-wide', 'authz-allow-no-rules'];

  it.each(cases)('%s: every input resource is valid', (name) => {
    for (const r of golden(name).resources) expect(validateResource(r)).toMatchObject({ ok: true });
  });

  it.each(cases)('%s: the listeners survive the discovery wire encoding unchanged', (name) => {
    const { snapshot } = golden(name);
    const stream = discoveryService().Stream;
    if (stream === undefined) throw new Error('weft.v1.Discovery has no Stream method');
    const message = { snapshot: { version: '1', nonce: 'n', listeners: snapshot.config.listeners } };
    const decoded = stream.responseDeserialize(stream.responseSerialize(message)) as typeof message;
    expect(decoded.snapshot.listeners).toEqual(snapshot.config.listeners);
  });

  it('allow by principal: productpage may GET /reviews/*, a ratings-test peer may not', () => {
    const { rbac } = golden('authz-allow-principal');
    const productpage = 'spiffe://cluster.local/ns/bookinfo/sa/productpage';
    expect(authorize(rbac, productpage, 'GET', '/reviews/1', {}).reason).toBe(
      'bookinfo/reviews-readers/rule-0',
    );
    expect(authorize(rbac, productpage, 'POST', '/reviews/1', {}).allowed).toBe(false);
    const ratings = 'spiffe://cluster.local/ns/bookinfo/sa/ratings-v2';
    expect(authorize(rbac, ratings, 'GET', '/reviews/1', {}).allowed).toBe(true);
    const tester = 'spiffe://cluster.local/ns/bookinfo/sa/ratings-test';
    expect(authorize(rbac, tester, 'GET', '/reviews/1', {}).reason).toBe(NO_ALLOW_RULE);
  });

  it('deny by path: /admin and /internal writes in prod are denied, the rest allowed', () => {
    const { rbac } = golden('authz-deny-path');
    expect(authorize(rbac, '', 'GET', '/x/../admin', {}).reason).toBe('default/no-admin/rule-0');
    const prod = { 'x-env': 'prod-eu' };
    expect(authorize(rbac, '', 'POST', '/internal/jobs', prod).reason).toBe('default/no-admin/rule-1');
    expect(authorize(rbac, '', 'GET', '/internal/jobs', prod).allowed).toBe(true);
    expect(authorize(rbac, '', 'POST', '/internal/jobs', { 'x-env': 'prod-canary' }).allowed).toBe(true);
    expect(authorize(rbac, '', 'POST', '/api', {}).allowed).toBe(true);
  });

  it('namespace-wide: same namespace allowed, monitoring only GET /metrics, test-* denied', () => {
    const { rbac } = golden('authz-namespace-wide');
    expect(authorize(rbac, CART, 'DELETE', '/cart', {}).reason).toBe('shop/same-namespace/rule-0');
    const mon = 'spiffe://cluster.local/ns/monitoring/sa/prometheus';
    expect(authorize(rbac, mon, 'GET', '/metrics', {}).reason).toBe('shop/monitoring/rule-0');
    expect(authorize(rbac, mon, 'GET', '/cart', {}).reason).toBe(NO_ALLOW_RULE);
    expect(authorize(rbac, TESTER, 'GET', '/metrics', {}).reason).toBe('shop/no-test-namespaces/rule-0');
  });

  it('allow with no rules: every request is denied', () => {
    const { rbac } = golden('authz-allow-no-rules');
    expect(authorize(rbac, WEB, 'GET', '/', {}).reason).toBe(NO_ALLOW_RULE);
    expect(authorize(rbac, '', 'GET', '/', {}).reason).toBe('default/deny-plaintext/rule-0');
  });
});
