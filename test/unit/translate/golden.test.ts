/**
 * Golden files: every test/golden/<case>/input.yaml translates to exactly the snapshot in its
 * snapshot.json, and every snapshot is one the proxy accepts (schema, references, router,
 * clusters). Snapshots are compared as data; byte-stable output is determinism.test.ts's job.
 * Regenerate after an intended change with `UPDATE_GOLDEN=1 npx vitest run test/unit/translate`
 * (the files are then formatted with Biome, as `biome ci .` expects), and review the diff.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { translate } from '../../../control-plane/translate/translate.ts';
import { loadCase, proxyProblems } from './helpers.ts';

const GOLDEN_DIR = fileURLToPath(new URL('../../golden/', import.meta.url));
const BIOME = fileURLToPath(new URL('../../../node_modules/.bin/biome', import.meta.url));
const UPDATE = process.env.UPDATE_GOLDEN === '1';
const cases = readdirSync(GOLDEN_DIR, { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(`${GOLDEN_DIR}${d.name}/input.yaml`))
  .map((d) => d.name)
  .sort();

describe('translator golden files', () => {
  afterAll(() => {
    if (UPDATE) execFileSync(BIOME, ['format', '--write', GOLDEN_DIR], { stdio: 'ignore' });
  });

  it('has at least the ten required cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(10);
  });

  for (const name of cases) {
    const dir = `${GOLDEN_DIR}${name}`;
    const c = loadCase(dir);
    it(`${name}: ${c.description}`, () => {
      const snapshot = translate(c.state, c.proxy);
      const file = `${dir}/snapshot.json`;
      if (UPDATE) writeFileSync(file, `${JSON.stringify(snapshot, null, 2)}\n`);
      expect(existsSync(file), `${file} is missing: run with UPDATE_GOLDEN=1 and review it`).toBe(true);
      expect(snapshot).toEqual(JSON.parse(readFileSync(file, 'utf8')));
      expect(proxyProblems(snapshot.config)).toEqual([]);
    });
  }
});
