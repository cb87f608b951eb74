/** Join tokens on the memory store with a hand-moved clock: minting, hashing, expiry, revocation. */
import { describe, expect, it } from 'vitest';
import {
  JoinTokens,
  TokenError,
  TokenNotFoundError,
  TokenRequestError,
} from '../../../control-plane/ca/tokens.ts';
import { TOKENS } from '../../../control-plane/store/keys.ts';
import { MemoryStore } from '../../support/memory-store.ts';
import { Clock } from './helpers.ts';

async function refusal(p: Promise<unknown>): Promise<TokenError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof TokenError) return err;
    throw err;
  }
  throw new Error('expected a TokenError');
}

describe('join tokens', () => {
  it('mint <id>.<secret>, store only a hash, and authenticate as their binding, again and again', async () => {
    const store = new MemoryStore();
    const tokens = new JoinTokens(store);
    const { token, info } = await tokens.create({ service: 'web', namespace: 'shop' });
    expect(token).toMatch(/^[0-9a-f]{16}\.[A-Za-z0-9_-]{43}$/);
    expect(info).toMatchObject({ service: 'web', namespace: 'shop', serviceAccount: 'web', state: 'active' });
    const secret = token.split('.')[1] as string;
    const { items } = await store.list(TOKENS);
    expect(items).toHaveLength(1);
    expect(items[0]?.value).not.toContain(secret);
    for (let i = 0; i < 3; i++) {
      expect(await tokens.authenticate(token)).toEqual({
        namespace: 'shop',
        serviceAccount: 'web',
        tokenId: info.id,
      });
    }
  });

  it('bind a distinct service account when asked', async () => {
    const tokens = new JoinTokens(new MemoryStore());
    const { token } = await tokens.create({ service: 'web', serviceAccount: 'frontend' });
    expect(await tokens.authenticate(token)).toMatchObject({
      namespace: 'default',
      serviceAccount: 'frontend',
    });
  });

  it('refuse unknown ids, wrong secrets and malformed tokens alike', async () => {
    const tokens = new JoinTokens(new MemoryStore());
    const { token } = await tokens.create({ service: 'web' });
    const [id] = token.split('.') as [string];
    expect((await refusal(tokens.authenticate(`${id}.${'A'.repeat(43)}`))).reason).toBe('unknown');
    expect((await refusal(tokens.authenticate(`0000000000000000.${'A'.repeat(43)}`))).reason).toBe('unknown');
    expect((await refusal(tokens.authenticate('nonsense'))).reason).toBe('malformed');
  });

  it('expire at their TTL', async () => {
    const clock = new Clock();
    const tokens = new JoinTokens(new MemoryStore(), clock.now);
    const { token } = await tokens.create({ service: 'web', ttlMs: 60_000 });
    clock.advance(59_999);
    await tokens.authenticate(token);
    clock.advance(1);
    const err = await refusal(tokens.authenticate(token));
    expect(err.reason).toBe('expired');
    expect(err.message).toMatch(/expired at/);
    expect((await tokens.list())[0]?.state).toBe('expired');
  });

  it('stop authenticating once revoked; revoking is idempotent and unknown ids are 404', async () => {
    const clock = new Clock();
    const tokens = new JoinTokens(new MemoryStore(), clock.now);
    const { token, info } = await tokens.create({ service: 'web' });
    const revoked = await tokens.revoke(info.id);
    expect(revoked.state).toBe('revoked');
    clock.advance(1000);
    expect((await tokens.revoke(info.id)).revokedAt).toBe(revoked.revokedAt);
    expect((await refusal(tokens.authenticate(token))).reason).toBe('revoked');
    await expect(tokens.revoke('0123456789abcdef')).rejects.toThrow(TokenNotFoundError);
    await expect(tokens.revoke('../../etc')).rejects.toThrow(TokenNotFoundError);
  });

  it('list without secrets, oldest first', async () => {
    const clock = new Clock();
    const tokens = new JoinTokens(new MemoryStore(), clock.now);
    const a = await tokens.create({ service: 'a' });
    clock.advance(1);
    const b = await tokens.create({ service: 'b' });
    const list = await tokens.list();
    expect(list.map((t) => t.id)).toEqual([a.info.id, b.info.id]);
    expect(JSON.stringify(list)).not.toContain(a.token.split('.')[1]);
  });

  it('refuse bad names and TTLs', async () => {
    const tokens = new JoinTokens(new MemoryStore());
    await expect(tokens.create({ service: 'Web!' })).rejects.toThrow(TokenRequestError);
    await expect(tokens.create({ service: 'web', namespace: 'a.b' })).rejects.toThrow(/namespace/);
    await expect(tokens.create({ service: 'web', ttlMs: 0 })).rejects.toThrow(/ttl/);
  });
});
