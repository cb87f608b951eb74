/**
 * The translator is a pure, deterministic function: the control plane pushes a snapshot only when
 * it changed, so the same mesh state must give a deep-equal (and byte-equal as JSON) snapshot
 * whatever the order of resources and endpoints, and snapshots must be immutable.
 */
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { translate } from '../../../control-plane/translate/translate.ts';
import type { MeshState } from '../../../control-plane/translate/types.ts';
import { loadCase, rng } from './helpers.ts';

const GOLDEN_DIR = fileURLToPath(new URL('../../golden/', import.meta.url));

function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const cases = readdirSync(GOLDEN_DIR, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

describe('translate is deterministic', () => {
  for (const name of cases) {
    it(`${name}: shuffling resources and endpoints changes nothing in the snapshot`, () => {
      const c = loadCase(`${GOLDEN_DIR}${name}`);
      const expected = translate(c.state, c.proxy);
      for (let seed = 1; seed <= 20; seed++) {
        const random = rng(seed);
        const state: MeshState = {
          ...c.state,
          resources: shuffled(c.state.resources, random),
          endpoints: shuffled(c.state.endpoints, random),
        };
        const actual = translate(state, c.proxy);
        expect(actual, `seed ${seed}`).toEqual(expected);
        expect(JSON.stringify(actual), `seed ${seed}`).toBe(JSON.stringify(expected));
      }
    });
  }

  it('two calls on one state give equal snapshots without sharing mutable objects', () => {
    const c = loadCase(`${GOLDEN_DIR}weighted-split`);
    const a = translate(c.state, c.proxy);
    const b = translate(c.state, c.proxy);
    expect(a).toEqual(b);
    expect(Object.isFrozen(a)).toBe(true);
    expect(Object.isFrozen(a.config.routes[1]?.virtualHosts?.[0]?.routes?.[0]?.route?.clusters)).toBe(true);
    expect(() => (a.config.clusters as unknown[]).push({ name: 'x' })).toThrow(TypeError);
  });

  it('the version is the store revision as a decimal string', () => {
    const c = loadCase(`${GOLDEN_DIR}default-forwarding`);
    expect(translate({ ...c.state, revision: 4711 }, c.proxy).version).toBe('4711');
  });

  it('neither modifies nor freezes its input (the snapshot shares no objects with it)', () => {
    const c = loadCase(`${GOLDEN_DIR}header-match-modifiers`);
    const before = structuredClone(c.state);
    translate(c.state, c.proxy);
    expect(c.state).toEqual(before);
    const frozen: string[] = [];
    const walk = (v: unknown, path: string): void => {
      if (typeof v !== 'object' || v === null) return;
      if (Object.isFrozen(v)) frozen.push(path);
      for (const [k, child] of Object.entries(v)) walk(child, `${path}.${k}`);
    };
    walk(c.state, 'state');
    expect(frozen).toEqual([]);
  });
});
