/**
 * `weft apikey create` (offline): the key is printed once, alone on stdout; the entry on stderr
 * holds only its SHA-256 and validates as part of a SecurityPolicy; with `-o yaml` both go to
 * stdout; bad flags exit 2.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { validateResources } from '../../control-plane/resources/validate.ts';
import { weft } from '../support/mesh.ts';

describe('weft apikey create', () => {
  it('prints a new key once and an entry with only its hash, which a SecurityPolicy accepts', async () => {
    const r = await weft([
      'apikey',
      'create',
      '--client',
      'acme',
      '--plan',
      'pro',
      '--scopes',
      'read,write',
      '--ttl',
      '720h',
    ]);
    expect(r.code).toBe(0);
    const key = r.stdout.trim();
    expect(key).toMatch(/^wk_[A-Za-z0-9_-]{43}$/);
    const entry = parse(r.stderr.split('\n').slice(2).join('\n')) as [
      { id: string; keys: { sha256: string }[] },
    ];
    expect(entry[0].id).toBe('acme');
    expect(entry[0].keys[0]?.sha256).toBe(createHash('sha256').update(key).digest('hex'));
    expect(r.stderr).not.toContain(key);
    const { errors } = validateResources([
      {
        apiVersion: 'weft.dev/v1alpha1',
        kind: 'SecurityPolicy',
        metadata: { name: 'keys' },
        spec: { targetRefs: [{ kind: 'Gateway', name: 'edge' }], apiKeyAuth: { clients: entry } },
      },
    ]);
    expect(errors).toEqual([]);
  });

  it('prints key and entry together with -o yaml, a new key each time', async () => {
    const [a, b] = await Promise.all([
      weft([
        'apikey',
        'create',
        '--client',
        'c',
        '--key-id',
        'k2',
        '--expires-at',
        '2030-01-31T00:00:00Z',
        '-o',
        'yaml',
      ]),
      weft(['apikey', 'create', '--client', 'c', '-o', 'yaml']),
    ]);
    const doc = parse(a.stdout) as { key: string; client: { keys: { id: string; expiresAt: string }[] } };
    expect(doc.client.keys[0]).toMatchObject({ id: 'k2', expiresAt: '2030-01-31T00:00:00Z' });
    expect((parse(b.stdout) as { key: string }).key).not.toBe(doc.key);
  });

  it('exits 2 on a bad expiry', async () => {
    const r = await weft(['apikey', 'create', '--client', 'c', '--expires-at', 'tomorrow']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('must be an RFC 3339 time');
  });
});
