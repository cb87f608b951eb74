/**
 * The `weft` admin verbs as real processes (`bin/weft`) against an admin API started in this
 * test process (memory store, real mesh state). The token comes from `./.weft/admin-token` in
 * the CLI's working directory, as on a control-plane host. Checks exit codes (0 ok, 1 failure,
 * 2 usage), the printed lines, and that `-o json` is JSON.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateToken } from '../../control-plane/api/tokenFile.ts';
import type { ApplyResponse, ProxyList, ResourceList } from '../../control-plane/api/types.ts';
import {
  INVALID_SERVICE_YAML,
  proxyRecord,
  routeYaml,
  SERVICE_YAML,
  startTestApi,
  type TestApi,
  writeProxies,
} from '../support/api-fakes.ts';

const WEFT = fileURLToPath(new URL('../../bin/weft', import.meta.url));

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

let dir: string;
let api: TestApi;
let env: NodeJS.ProcessEnv;

/** Runs `bin/weft args` in `dir`; resolves when it exits. */
function weft(
  args: readonly string[],
  options: { input?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(WEFT, args, { cwd: dir, env: options.env ?? env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

function file(name: string): string {
  return join(dir, name);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-cli-'));
  const token = await loadOrCreateToken(join(dir, '.weft'));
  api = await startTestApi(token);
  const { WEFT_TOKEN: _t, WEFT_SERVER: _s, FORCE_COLOR: _f, ...rest } = process.env;
  env = { ...rest, WEFT_SERVER: api.url, NO_COLOR: '1' };
  await mkdir(file('manifests'));
  await writeFile(file('manifests/10-service.yaml'), SERVICE_YAML);
  await writeFile(file('manifests/20-route.yml'), routeYaml());
  await writeFile(file('manifests/README.md'), 'not a manifest');
  await writeFile(file('route-v2.yaml'), routeYaml({ prefix: '/v2' }));
  await writeFile(file('invalid.yaml'), `${SERVICE_YAML}---\n${INVALID_SERVICE_YAML}`);
});

afterAll(async () => {
  await api?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('weft apply / get / diff / delete', () => {
  it('applies a directory in name order, prints each action and the revision, and exits 0', async () => {
    const r = await weft(['apply', '-f', 'manifests']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const revision = await api.store.revision();
    expect(r.stdout).toBe(
      `Service/default/reviews created\nHTTPRoute/default/reviews created\nrevision ${revision}\n`,
    );
  });

  it('reports unchanged documents on a second apply, as JSON with -o json', async () => {
    const r = await weft(['apply', '-f', 'manifests', '-o', 'json']);
    expect(r.code).toBe(0);
    const body = JSON.parse(r.stdout) as ApplyResponse;
    expect(body.results.map((x) => x.action)).toEqual(['unchanged', 'unchanged']);
  });

  it('reads documents from stdin with -f - and honours --dry-run', async () => {
    const r = await weft(['apply', '-f', '-', '--dry-run'], { input: routeYaml({ name: 'dry' }) });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('HTTPRoute/default/dry created (dry run)');
    expect((await weft(['get', 'httproute', 'dry'])).code).toBe(1);
  });

  it('fails with exit 1, every error on stderr and nothing stored when a document is invalid', async () => {
    const writes = api.store.writes;
    const r = await weft(['apply', '-f', 'invalid.yaml']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Service default\/broken: spec\.ports/);
    expect(api.store.writes).toBe(writes);
  });

  it('gets kinds case-insensitively and in the plural, as a table, JSON or YAML', async () => {
    const table = await weft(['get', 'HTTPRoutes']);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^NAMESPACE\s+NAME\s+REVISION\s+AGE\s+ACCEPTED$/);
    expect(table.stdout).toMatch(/^default\s+reviews\s+\d+\s+\d+s\s+\S+/m);

    const json = await weft(['get', 'services', '-o', 'json']);
    expect(json.code).toBe(0);
    expect((JSON.parse(json.stdout) as ResourceList).items.map((i) => i.metadata.name)).toEqual(['reviews']);

    const yaml = await weft(['get', 'httproute', 'reviews', '-n', 'default', '-o', 'yaml']);
    expect(yaml.code).toBe(0);
    expect(yaml.stdout).toMatch(/^kind: HTTPRoute$/m);
  });

  it('exits 1 for a missing resource and 2 for an unknown kind or missing arguments', async () => {
    const missing = await weft(['get', 'httproute', 'nope']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('HTTPRoute/default/nope not found');
    expect((await weft(['get', 'pods'])).code).toBe(2);
    expect((await weft(['get'])).code).toBe(2);
    expect((await weft(['apply'])).code).toBe(2);
    expect((await weft(['apply', '-f', 'x.yaml', '--bogus'])).code).toBe(2);
    expect((await weft(['get', 'services', '-o', 'xml'])).code).toBe(2);
  });

  it('diff exits 0 without differences and 1 with them, printing a unified diff', async () => {
    const same = await weft(['diff', '-f', 'manifests']);
    expect(same.code).toBe(0);
    expect(same.stdout).toContain('no differences');

    const changed = await weft(['diff', '-f', 'route-v2.yaml']);
    expect(changed.code).toBe(1);
    expect(changed.stdout).toMatch(/^\+\s+value: \/v2$/m);
    expect(changed.stdout).toMatch(/^-\s+value: \/$/m);
  });

  it('deletes by kind and name (exit 1 when missing) and by file', async () => {
    const applied = await weft(['apply', '-f', '-'], { input: routeYaml({ name: 'temp' }) });
    expect(applied.code).toBe(0);
    const del = await weft(['delete', 'httproutes', 'temp']);
    expect(del.code).toBe(0);
    expect(del.stdout).toContain('HTTPRoute/default/temp deleted');
    expect((await weft(['delete', 'httproute', 'temp'])).code).toBe(1);
    expect((await weft(['delete', 'httproute'])).code).toBe(2);

    await writeFile(file('temp.yaml'), routeYaml({ name: 'temp2' }));
    expect((await weft(['apply', '-f', 'temp.yaml'])).code).toBe(0);
    const byFile = await weft(['delete', '-f', 'temp.yaml', '-o', 'json']);
    expect(byFile.code).toBe(0);
    expect(JSON.parse(byFile.stdout)).toMatchObject({
      results: [{ id: 'HTTPRoute/default/temp2', action: 'deleted' }],
    });
  });
});

describe('weft validate (offline)', () => {
  const offline = (): NodeJS.ProcessEnv => ({ ...env, WEFT_SERVER: 'http://127.0.0.1:1' });

  it('exits 1 and names resource, field and reason of each error', async () => {
    const r = await weft(['validate', '-f', 'invalid.yaml'], { env: offline() });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Service default\/broken: spec\.ports\[0\]\.port: \S/);
  });

  it('exits 0 for valid files without a server', async () => {
    await writeFile(file('other-route.yaml'), routeYaml({ name: 'other' }));
    const r = await weft(['validate', '-f', 'manifests', '-f', 'other-route.yaml'], { env: offline() });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('3 resources valid');
  });

  it('names the file in a parse error', async () => {
    await writeFile(file('broken.yaml'), 'kind: [unclosed\n');
    const r = await weft(['validate', '-f', 'broken.yaml'], { env: offline() });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('broken.yaml');
  });
});

describe('authentication', () => {
  it('uses ./.weft/admin-token by default and fails with exit 1 on a wrong token', async () => {
    const r = await weft(['get', 'services', '--token', 'wrong']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('unauthorized');
    const elsewhere = await weft(['get', 'services', '--data-dir', join(dir, 'nothing-here')]);
    expect(elsewhere.code).toBe(1);
    expect((await weft(['get', 'services', '--token', api.token])).code).toBe(0);
  });

  it('exits 1 with the URL when the server cannot be reached', async () => {
    const r = await weft(['get', 'services', '--server', 'http://127.0.0.1:1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot reach the control plane at http://127.0.0.1:1');
  });
});

describe('proxies', () => {
  it('apply --wait prints the rollout receipt and exits 1 when a proxy NACKs', async () => {
    await writeProxies(
      api.store,
      proxyRecord('reviews-1', { syncedRevision: 1_000_000 }),
      proxyRecord('reviews-2', {
        lastNack: { version: '1000000', reason: 'cluster c: bad lb', at: '2026-11-30T10:00:00Z' },
      }),
    );
    const r = await weft(['apply', '-f', 'route-v2.yaml', '--wait', '--timeout', '30s']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('HTTPRoute/default/reviews configured');
    expect(r.stdout).toMatch(/1 synced, 1 NACKed, 0 pending/);
    expect(r.stdout).toMatch(/^reviews-1\s+synced/m);
    expect(r.stdout).toMatch(/^reviews-2\s+NACKed\s+version 1000000: cluster c: bad lb$/m);
  });

  it('apply --wait exits 1 when the rollout is incomplete at the timeout, 0 when all synced', async () => {
    await writeProxies(api.store, proxyRecord('reviews-2', { syncedRevision: 0 }));
    const slow = await weft(['apply', '-f', 'manifests', '--wait', '--timeout', '200ms']);
    expect(slow.code).toBe(1);
    expect(slow.stdout).toMatch(/^reviews-2\s+pending/m);
    expect(slow.stderr).toContain('0 NACKed, 1 pending');

    await writeProxies(api.store, proxyRecord('reviews-2', { syncedRevision: 1_000_000 }));
    const done = await weft(['apply', '-f', 'manifests', '--wait', '-o', 'json']);
    expect(done.code).toBe(0);
    expect(JSON.parse(done.stdout)).toMatchObject({
      rollout: { complete: true, synced: ['reviews-1', 'reviews-2'] },
    });
  });

  it('proxy-status shows a table and JSON', async () => {
    const table = await weft(['proxy-status']);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(
      /^PROXY\s+SERVICE\s+NAMESPACE\s+CONNECTED\s+ACKED\s+SYNCED\s+LAST NACK$/,
    );
    expect(table.stdout).toMatch(/^reviews-1\s+reviews\s+default\s+/m);
    const json = await weft(['ps', '-o', 'json']);
    expect((JSON.parse(json.stdout) as ProxyList).items.map((p) => p.proxyId)).toEqual([
      'reviews-1',
      'reviews-2',
    ]);
  });

  it('proxy-config prints one section of the computed config', async () => {
    const json = await weft(['proxy-config', 'reviews-1', 'listeners', '-o', 'json']);
    expect(json.code).toBe(0);
    const listeners = JSON.parse(json.stdout) as { name: string }[];
    expect(listeners.length).toBeGreaterThan(0);
    const table = await weft(['pc', 'reviews-1', 'routes']);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^ROUTE CONFIG\s+VIRTUAL HOST\s+DOMAINS\s+ROUTES$/);
    expect((await weft(['proxy-config', 'nobody', 'routes'])).code).toBe(1);
    expect((await weft(['proxy-config', 'reviews-1', 'secrets'])).code).toBe(2);
  });
});
