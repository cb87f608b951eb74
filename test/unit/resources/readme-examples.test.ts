/**
 * The resource examples in README.md are real: every YAML block there that holds a resource
 * validates without errors, and every kind has one.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseDocuments } from '../../../control-plane/resources/parse.ts';
import { KINDS } from '../../../control-plane/resources/types.ts';
import { validateResources } from '../../../control-plane/resources/validate.ts';
import { makeEdgeAuth } from '../../../deploy/examples/demo-edge.ts';

const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
const blocks = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)]
  .map((m) => m[1] as string)
  .filter((b) => b.includes('apiVersion:'));

describe('README resource examples', () => {
  it('all validate', () => {
    const docs = blocks.flatMap((b, i) => parseDocuments(b, `README.md yaml block #${i + 1}`));
    const { errors } = validateResources(docs);
    expect(errors).toEqual([]);
  });

  it('cover every kind', () => {
    const kinds = new Set(
      blocks.flatMap((b) => parseDocuments(b, 'README').map((d) => (d as { kind: string }).kind)),
    );
    expect([...kinds].sort()).toEqual(Object.keys(KINDS).sort());
  });
});

describe('deploy/examples resources', () => {
  it.each(['mesh.yaml', 'api-50-50.yaml'])('%s validates', (file) => {
    const text = readFileSync(new URL(`../../../deploy/examples/${file}`, import.meta.url), 'utf8');
    expect(validateResources(parseDocuments(text, file)).errors).toEqual([]);
  });
});

describe('the npm start demo', () => {
  it('mesh.yaml and the SecurityPolicies the demo applies (demo-edge.ts) validate together', async () => {
    const mesh = readFileSync(new URL('../../../deploy/examples/mesh.yaml', import.meta.url), 'utf8');
    const { yaml } = await makeEdgeAuth();
    const docs = [...parseDocuments(mesh, 'mesh.yaml'), ...parseDocuments(yaml, 'demo-edge.ts')];
    expect(validateResources(docs).errors).toEqual([]);
    const ids = docs.map((d) => {
      const r = d as { kind: string; metadata: { name: string } };
      return `${r.kind}/${r.metadata.name}`;
    });
    expect(ids).toEqual(
      expect.arrayContaining([
        'HTTPRoute/web-jwt',
        'HTTPRoute/web-partner',
        'RateLimitPolicy/partner-limits',
        'SecurityPolicy/web-jwt-auth',
        'SecurityPolicy/web-partner-auth',
      ]),
    );
  });
});
