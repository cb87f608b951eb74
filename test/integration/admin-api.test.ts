/**
 * The admin HTTP API over a real socket (127.0.0.1:0) with the in-memory store and the real mesh
 * state cache: auth, all-or-nothing apply, dry runs, unchanged detection, get/list/delete, diff,
 * proxies and proxy config, and rollout receipts from fake proxy status records.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadOrCreateToken } from '../../control-plane/api/tokenFile.ts';
import type {
  ApplyResponse,
  DeleteResponse,
  DiffResponse,
  ProxyList,
  ResourceList,
  RolloutReceipt,
} from '../../control-plane/api/types.ts';
import type { Resource } from '../../control-plane/resources/types.ts';
import type { TxnCondition, TxnOp } from '../../control-plane/store/types.ts';
import type { ProxySnapshot } from '../../control-plane/translate/types.ts';
import {
  INVALID_SERVICE_YAML,
  proxyRecord,
  routeYaml,
  SERVICE_YAML,
  startTestApi,
  type TestApi,
  writeProxies,
} from '../support/api-fakes.ts';

const BOTH = `${SERVICE_YAML}---\n${routeYaml()}`;

let api: TestApi;
beforeEach(async () => {
  api = await startTestApi();
});
afterEach(async () => {
  await api.close();
});

async function apply(body: string, query = ''): Promise<ApplyResponse> {
  const res = await api.call('POST', `/v1/apply${query}`, { body });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body as ApplyResponse;
}

describe('authentication', () => {
  it('serves GET /healthz without a token', async () => {
    const res = await api.call('GET', '/healthz', { token: null });
    expect(res.status).toBe(200);
  });

  it('answers 401 with WWW-Authenticate: Bearer to a request without a token or with a wrong one', async () => {
    for (const token of [null, 'wrong-token', '']) {
      const res = await api.call('GET', '/v1/resources', { token });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(res.body).toMatchObject({ error: expect.stringContaining('unauthorized') });
    }
  });

  it('checks the token before parsing the body, so unauthenticated writes store nothing', async () => {
    const res = await api.call('POST', '/v1/apply', { body: SERVICE_YAML, token: null });
    expect(res.status).toBe(401);
    expect(api.store.writes).toBe(0);
  });
});

describe('POST /v1/apply', () => {
  it('creates every document in one revision and stamps creationTimestamp and resourceVersion', async () => {
    const before = await api.store.revision();
    const res = await apply(BOTH);
    expect(res.revision).toBe(before + 1);
    expect(res.results).toEqual([
      { id: 'Service/default/reviews', action: 'created' },
      { id: 'HTTPRoute/default/reviews', action: 'created' },
    ]);
    expect(api.store.writes).toBe(1);
    const got = await api.call('GET', '/v1/resources/HTTPRoute/default/reviews');
    const route = got.body as Resource;
    expect(route.metadata.resourceVersion).toBe(String(res.revision));
    expect(Number.isNaN(Date.parse(route.metadata.creationTimestamp ?? ''))).toBe(false);
  });

  it('rejects the whole request with 422 and stores nothing when one document is invalid', async () => {
    const res = await api.call('POST', '/v1/apply', { body: `${BOTH}---\n${INVALID_SERVICE_YAML}` });
    expect(res.status).toBe(422);
    const { errors } = res.body as { errors: string[] };
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.join('\n')).toMatch(/Service default\/broken: spec\.ports/);
    expect(api.store.writes).toBe(0);
    const list = (await api.call('GET', '/v1/resources')).body as ResourceList;
    expect(list.items).toEqual([]);
  });

  it('rejects two documents naming the same resource', async () => {
    const res = await api.call('POST', '/v1/apply', { body: `${SERVICE_YAML}---\n${SERVICE_YAML}` });
    expect(res.status).toBe(422);
    expect((res.body as { errors: string[] }).errors.join('\n')).toMatch(
      /Service default\/reviews: metadata\.name: /,
    );
    expect(api.store.writes).toBe(0);
  });

  it('answers 422 with the parse error for text that is not YAML', async () => {
    const res = await api.call('POST', '/v1/apply', { body: 'kind: [unclosed' });
    expect(res.status).toBe(422);
    expect((res.body as { errors: string[] }).errors).toHaveLength(1);
    expect(api.store.writes).toBe(0);
  });

  it('with dryRun=true reports what would happen and writes nothing', async () => {
    const res = await apply(BOTH, '?dryRun=true');
    expect(res.dryRun).toBe(true);
    expect(res.results.map((r) => r.action)).toEqual(['created', 'created']);
    expect(res.revision).toBe(await api.store.revision());
    expect(api.store.writes).toBe(0);
    expect((await api.call('GET', '/v1/resources/Service/default/reviews')).status).toBe(404);
  });

  it('reports unchanged documents, writes only changed ones and keeps creationTimestamp', async () => {
    const first = await apply(BOTH);
    const created = (await api.call('GET', '/v1/resources/HTTPRoute/default/reviews')).body as Resource;

    const again = await apply(BOTH);
    expect(again.results.map((r) => r.action)).toEqual(['unchanged', 'unchanged']);
    expect(again.revision).toBe(first.revision);
    expect(api.store.writes).toBe(1);

    const changed = await apply(`${SERVICE_YAML}---\n${routeYaml({ prefix: '/v2' })}`);
    expect(changed.results).toEqual([
      { id: 'Service/default/reviews', action: 'unchanged' },
      { id: 'HTTPRoute/default/reviews', action: 'configured' },
    ]);
    expect(changed.revision).toBe(first.revision + 1);
    const updated = (await api.call('GET', '/v1/resources/HTTPRoute/default/reviews')).body as Resource;
    expect(updated.metadata.creationTimestamp).toBe(created.metadata.creationTimestamp);
    expect(updated.metadata.resourceVersion).toBe(String(changed.revision));
    expect((await api.call('GET', '/v1/resources/Service/default/reviews')).body).toMatchObject({
      metadata: { resourceVersion: String(first.revision) },
    });
  });

  it('re-plans once when a concurrent write changes a key between its read and its transaction', async () => {
    await apply(SERVICE_YAML);
    const store = api.store;
    const realTxn = store.txn.bind(store);
    let interfere = true;
    store.txn = async (ops: readonly TxnOp[], conditions?: readonly TxnCondition[]) => {
      if (interfere) {
        interfere = false;
        const kv = await store.get('/weft/resources/Service/default/reviews');
        await realTxn([{ op: 'put', key: kv!.key, value: kv!.value }]);
      }
      return realTxn(ops, conditions);
    };
    const changed = await apply(SERVICE_YAML.replace('9080', '9081'));
    expect(interfere).toBe(false);
    expect(changed.results).toEqual([{ id: 'Service/default/reviews', action: 'configured' }]);
    expect(api.store.writes).toBe(3);
    const svc = (await api.call('GET', '/v1/resources/Service/default/reviews')).body as Resource;
    expect(JSON.stringify(svc.spec)).toContain('9081');
  });

  it('answers 409 when the transaction conflicts twice and writes nothing of its own', async () => {
    await apply(SERVICE_YAML);
    const store = api.store;
    const realTxn = store.txn.bind(store);
    store.txn = async (ops: readonly TxnOp[], conditions?: readonly TxnCondition[]) => {
      const kv = await store.get('/weft/resources/Service/default/reviews');
      await realTxn([{ op: 'put', key: kv!.key, value: kv!.value }]);
      return realTxn(ops, conditions);
    };
    const res = await api.call('POST', '/v1/apply', { body: SERVICE_YAML.replace('9080', '9081') });
    expect(res.status).toBe(409);
    store.txn = realTxn;
    const svc = (await api.call('GET', '/v1/resources/Service/default/reviews')).body as Resource;
    expect(JSON.stringify(svc.spec)).toContain('9080');
  });
});

describe('GET /v1/resources', () => {
  it('lists by kind and namespace, and gives routes their status', async () => {
    await apply(BOTH);
    await apply(routeYaml({ name: 'other' }).replace('namespace: default', 'namespace: shop'));
    const all = (await api.call('GET', '/v1/resources')).body as ResourceList;
    expect(all.items.map((r) => `${r.kind}/${r.metadata.namespace}/${r.metadata.name}`)).toEqual([
      'HTTPRoute/default/reviews',
      'HTTPRoute/shop/other',
      'Service/default/reviews',
    ]);
    const routes = (await api.call('GET', '/v1/resources?kind=HTTPRoute&namespace=default'))
      .body as ResourceList;
    expect(routes.items.map((r) => r.metadata.name)).toEqual(['reviews']);
    expect(routes.items[0]?.status).toMatchObject({
      parents: [expect.objectContaining({ conditions: expect.any(Array) })],
    });
    const shop = (await api.call('GET', '/v1/resources?namespace=shop')).body as ResourceList;
    expect(shop.items.map((r) => r.metadata.name)).toEqual(['other']);
  });

  it('answers 404 JSON for a missing resource and 400 for an unknown kind', async () => {
    const missing = await api.call('GET', '/v1/resources/HTTPRoute/default/nope');
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ error: expect.stringContaining('HTTPRoute/default/nope') });
    expect((await api.call('GET', '/v1/resources/Pod/default/x')).status).toBe(400);
    expect((await api.call('GET', '/v1/resources?kind=Pod')).status).toBe(400);
  });

  it('answers 404 for an unknown endpoint and 405 with Allow for a wrong method', async () => {
    expect((await api.call('GET', '/v1/nothing')).status).toBe(404);
    const res = await api.call('PUT', '/v1/apply', { body: '' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
  });
});

describe('deleting', () => {
  it('DELETE /v1/resources/<Kind>/<ns>/<name> deletes one resource, then answers 404', async () => {
    await apply(BOTH);
    const res = await api.call('DELETE', '/v1/resources/HTTPRoute/default/reviews');
    expect(res.status).toBe(200);
    expect((res.body as { revision: number }).revision).toBe(await api.store.revision());
    expect((await api.call('GET', '/v1/resources/HTTPRoute/default/reviews')).status).toBe(404);
    expect((await api.call('DELETE', '/v1/resources/HTTPRoute/default/reviews')).status).toBe(404);
  });

  it('POST /v1/delete deletes the documents named in one revision and reports missing ones', async () => {
    await apply(BOTH);
    const writes = api.store.writes;
    const res = await api.call('POST', '/v1/delete', { body: `${BOTH}---\n${routeYaml({ name: 'ghost' })}` });
    expect(res.status).toBe(200);
    expect((res.body as DeleteResponse).results).toEqual([
      { id: 'Service/default/reviews', action: 'deleted' },
      { id: 'HTTPRoute/default/reviews', action: 'deleted' },
      { id: 'HTTPRoute/default/ghost', action: 'notFound' },
    ]);
    expect(api.store.writes).toBe(writes + 1);
    expect(((await api.call('GET', '/v1/resources')).body as ResourceList).items).toEqual([]);
  });
});

describe('POST /v1/diff', () => {
  it('shows a unified diff for changed documents and nothing for unchanged ones', async () => {
    await apply(BOTH);
    const res = await api.call('POST', '/v1/diff', {
      body: `${SERVICE_YAML}---\n${routeYaml({ prefix: '/v2' })}---\n${routeYaml({ name: 'new' })}`,
    });
    expect(res.status).toBe(200);
    const [svc, route, created] = (res.body as DiffResponse).diffs;
    expect(svc).toEqual({ id: 'Service/default/reviews', action: 'unchanged', diff: '' });
    expect(route?.action).toBe('configured');
    expect(route?.diff).toMatch(/^-\s+value: \/$/m);
    expect(route?.diff).toMatch(/^\+\s+value: \/v2$/m);
    expect(route?.diff).toContain('@@');
    expect(created?.action).toBe('created');
    expect(created?.diff).toMatch(/^\+kind: HTTPRoute$/m);
    expect(api.store.writes).toBe(1);
  });

  it('answers 422 for invalid documents', async () => {
    const res = await api.call('POST', '/v1/diff', { body: INVALID_SERVICE_YAML });
    expect(res.status).toBe(422);
  });
});

describe('proxies', () => {
  it('lists status records and serves the translated config of a known proxy', async () => {
    await apply(BOTH);
    await writeProxies(api.store, proxyRecord('reviews-1'), proxyRecord('reviews-2'));
    const list = (await api.call('GET', '/v1/proxies')).body as ProxyList;
    expect(list.items.map((p) => p.proxyId)).toEqual(['reviews-1', 'reviews-2']);
    const config = await api.call('GET', '/v1/proxies/reviews-1/config');
    expect(config.status).toBe(200);
    const snapshot = config.body as ProxySnapshot;
    expect(snapshot.version).toBe(String(api.mesh.state().revision));
    expect(snapshot.config.listeners.length).toBeGreaterThan(0);
    expect((await api.call('GET', '/v1/proxies/nobody/config')).status).toBe(404);
  });
});

describe('GET /v1/rollout', () => {
  async function rollout(revision: number, timeoutMs: number): Promise<RolloutReceipt> {
    const res = await api.call('GET', `/v1/rollout?revision=${revision}&timeoutMs=${timeoutMs}`);
    expect(res.status).toBe(200);
    return res.body as RolloutReceipt;
  }

  it('is complete at once when every connected proxy has synced the revision', async () => {
    const { revision } = await apply(BOTH);
    await writeProxies(
      api.store,
      proxyRecord('a', { syncedRevision: revision }),
      proxyRecord('b', { syncedRevision: revision + 5 }),
    );
    expect(await rollout(revision, 60_000)).toEqual({
      revision,
      complete: true,
      synced: ['a', 'b'],
      nacked: [],
      pending: [],
    });
  });

  it('reports a NACK for the revision with its reason, and counts the proxy as done', async () => {
    const { revision } = await apply(BOTH);
    await writeProxies(
      api.store,
      proxyRecord('a', { syncedRevision: revision }),
      proxyRecord('b', {
        syncedRevision: revision - 1,
        lastNack: { version: String(revision), reason: 'route r: bad regex', at: '2026-11-30T10:00:01Z' },
      }),
    );
    const r = await rollout(revision, 60_000);
    expect(r.complete).toBe(true);
    expect(r.synced).toEqual(['a']);
    expect(r.nacked).toEqual([{ proxyId: 'b', version: String(revision), reason: 'route r: bad regex' }]);
  });

  it('waits for a pending proxy and completes when its record shows the revision synced', async () => {
    const { revision } = await apply(BOTH);
    await writeProxies(api.store, proxyRecord('a', { syncedRevision: revision - 1 }));
    const waiting = rollout(revision, 60_000);
    await writeProxies(
      api.store,
      proxyRecord('a', { syncedRevision: revision, ackedVersion: String(revision) }),
    );
    expect(await waiting).toMatchObject({ complete: true, synced: ['a'], pending: [] });
  });

  it('stops waiting for a proxy whose record disappears (stream gone, lease expired)', async () => {
    const { revision } = await apply(BOTH);
    const lease = await api.store.grantLease(10);
    await api.store.txn([
      { op: 'put', key: '/weft/proxies/gone', value: JSON.stringify(proxyRecord('gone')), lease: lease.id },
    ]);
    const waiting = rollout(revision, 60_000);
    api.store.expireLease(lease.id);
    expect(await waiting).toMatchObject({ complete: true, synced: [], pending: [] });
  });

  it('answers complete=false with the pending proxies after the timeout', async () => {
    const { revision } = await apply(BOTH);
    await writeProxies(api.store, proxyRecord('a', { syncedRevision: revision }), proxyRecord('slow'));
    expect(await rollout(revision, 150)).toEqual({
      revision,
      complete: false,
      synced: ['a'],
      nacked: [],
      pending: ['slow'],
    });
  });

  it('answers 400 without a revision', async () => {
    expect((await api.call('GET', '/v1/rollout')).status).toBe(400);
    expect((await api.call('GET', '/v1/rollout?revision=abc')).status).toBe(400);
  });
});

describe('loadOrCreateToken', () => {
  it('creates <dataDir>/admin-token with 64 hex characters and mode 0600, and reads it back later', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'weft-token-'));
    try {
      const dataDir = join(dir, 'data');
      const token = await loadOrCreateToken(dataDir);
      expect(token).toMatch(/^[0-9a-f]{64}$/);
      const info = await stat(join(dataDir, 'admin-token'));
      expect(info.mode & 0o777).toBe(0o600);
      expect(await loadOrCreateToken(dataDir)).toBe(token);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
