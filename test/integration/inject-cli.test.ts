/**
 * `weft inject` as a process: reads files (or a directory), writes the injected manifests to
 * stdout and one line per object to stderr; exits 1 with resource, field and reason (and writes
 * nothing) when a manifest cannot be injected; exits 2 without -f.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_INJECTOR_CONFIG } from '../../control-plane/inject/config.ts';
import { injectManifests } from '../../control-plane/inject/manifests.ts';
import { weft } from '../support/mesh.ts';

const GOLDEN = fileURLToPath(new URL('../golden-inject/', import.meta.url));
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-inject-cli-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('weft inject (CLI)', () => {
  it('writes the injected manifests to stdout and a report to stderr', async () => {
    const file = join(GOLDEN, 'multi-document.input.yaml');
    const r = await weft(['inject', '-f', file, '--image', 'registry.example/weft:1']);
    expect(r.code, r.stderr).toBe(0);
    const expected = injectManifests(await readFile(file, 'utf8'), {
      ...DEFAULT_INJECTOR_CONFIG,
      image: 'registry.example/weft:1',
    });
    expect(r.stdout).toBe(expected.text);
    expect(r.stderr.trim().split('\n')).toEqual([
      'Namespace legacy: passed-through',
      'Deployment legacy/old: disabled',
      'Deployment legacy/meshed: injected',
      'Deployment shop/opted-out: disabled',
      'ConfigMap shop/settings: passed-through',
    ]);
    // Its own output goes through unchanged.
    const outFile = join(dir, 'out.yaml');
    await writeFile(outFile, r.stdout);
    const again = await weft(['inject', '-f', outFile, '-q', '--image', 'registry.example/weft:1']);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(r.stdout);
    expect(again.stderr).toBe('');
  });

  it('exits 1 naming the resource, annotation and reason, and writes nothing', async () => {
    const bad = join(dir, 'bad.yaml');
    await writeFile(
      bad,
      `apiVersion: v1
kind: Pod
metadata:
  name: p
  namespace: shop
  annotations: { config.weft.dev/proxy-memory-limit: "lots" }
spec:
  containers: [{ name: app, image: x, ports: [{ containerPort: 80 }] }]
`,
    );
    const r = await weft(['inject', '-f', bad]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('weft: cannot inject');
    expect(r.stderr).toContain(
      'Pod shop/p: metadata.annotations["config.weft.dev/proxy-memory-limit"]: must be a Kubernetes quantity',
    );
  });

  it('exits 2 without -f', async () => {
    const r = await weft(['inject']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('inject needs -f');
  });
});
