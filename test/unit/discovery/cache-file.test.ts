import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CorruptCacheError, loadCached, writeCached } from '../../../sidecar/agent/cache-file.ts';
import type { ProxyConfig } from '../../../sidecar/proxy/config/model.ts';

const CONFIG: ProxyConfig = {
  listeners: [{ name: 'out', port: 15001, direction: 'OUTBOUND', routeConfigName: 'r' }],
  routes: [{ name: 'r', virtualHosts: [{ domains: ['*'], routes: [{ directResponse: { status: 200 } }] }] }],
  clusters: [],
  endpoints: [],
};

let dir: string;
let file: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-cache-'));
  file = join(dir, 'snapshot.json');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('config cache file', () => {
  it('round-trips a snapshot and leaves no temp file behind', async () => {
    await writeCached(file, { version: '7', config: CONFIG });
    expect(await loadCached(file)).toStrictEqual({ version: '7', config: CONFIG });
    expect(await readdir(dir)).toEqual(['snapshot.json']);
  });

  it("keeps a gateway's server certificates, in a file only its owner can read", async () => {
    const config: ProxyConfig = {
      ...CONFIG,
      certificates: [{ name: 'default/a', certChainPem: 'CERT', privateKeyPem: 'KEY' }],
    };
    await writeCached(file, { version: '9', config });
    expect(await loadCached(file)).toStrictEqual({ version: '9', config });
    expect((await stat(file)).mode & 0o077).toBe(0);
  });

  it('replaces the previous snapshot whole', async () => {
    await writeCached(file, { version: '7', config: CONFIG });
    await writeCached(file, { version: '8', config: { ...CONFIG, listeners: [] } });
    expect(await loadCached(file)).toStrictEqual({ version: '8', config: { ...CONFIG, listeners: [] } });
  });

  it('returns undefined when there is no cache file', async () => {
    expect(await loadCached(join(dir, 'missing.json'))).toBeUndefined();
  });

  it.each([
    ['truncated JSON', '{"version":"7","config":{"listeners":[', /not JSON/],
    ['not an object', '[1,2]', /expected an object/],
    ['no version', JSON.stringify({ config: CONFIG }), /version: expected a non-empty string/],
    [
      'a missing list',
      JSON.stringify({ version: '7', config: { ...CONFIG, routes: undefined } }),
      /config\.routes/,
    ],
    [
      'a schema violation',
      JSON.stringify({ version: '7', config: { ...CONFIG, clusters: [{ name: 'c', lbPolicy: 'FASTEST' }] } }),
      /clusters\[0\]\.lbPolicy/,
    ],
  ])('throws CorruptCacheError for %s', async (_name, text, message) => {
    await writeFile(file, text);
    const err = await loadCached(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptCacheError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).toContain(file);
  });

  it('writes JSON with all four lists', async () => {
    await writeCached(file, { version: '1', config: CONFIG });
    const doc = JSON.parse(await readFile(file, 'utf8')) as { config: Record<string, unknown> };
    expect(Object.keys(doc.config)).toEqual(['listeners', 'routes', 'clusters', 'endpoints']);
  });
});
