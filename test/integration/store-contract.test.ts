/**
 * The `Store` contract (etcd v3 API semantics), run against both backends: the embedded store in
 * a temp dir and a real etcd started for this file. Each test works under its own random prefix,
 * so etcd tests do not see each other's keys; revision arithmetic assumes the tests of one file
 * run one at a time (vitest's default). Every lease a test grants is revoked or expires within
 * the test, so no background revision lands in a later test. Then the embedded-only behaviour:
 * restart, crash recovery, torn log line, lock, snapshots, bounded history.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { appendFile, copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type EmbeddedStore, openEmbeddedStore } from '../../control-plane/store/embedded.ts';
import { openEtcdStore } from '../../control-plane/store/etcd.ts';
import type { StoreLogger } from '../../control-plane/store/logger.ts';
import { openStore } from '../../control-plane/store/open.ts';
import {
  LeaseNotFoundError,
  RevisionCompactedError,
  type Store,
  TxnConflictError,
  type WatchEvent,
} from '../../control-plane/store/types.ts';
import { type RunningEtcd, startEtcd } from '../support/etcd.ts';

type TestStore = Store & { compact(revision: number): Promise<void> };

interface Backend {
  readonly name: 'embedded' | 'etcd';
  setup(): Promise<void>;
  /** A new client of the backend's data (etcd: the same etcd; embedded: a fresh data dir). */
  open(): Promise<TestStore>;
  teardown(): Promise<void>;
}

/** Collects store warnings; each test must end with none (checked in afterEach). */
const warned: string[] = [];
const quiet: StoreLogger = { warn: (fields, message) => warned.push(`${message} ${JSON.stringify(fields)}`) };

afterEach(() => {
  expect(warned.splice(0)).toEqual([]);
});
const tempDirs: string[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'weft-store-'));
  tempDirs.push(dir);
  return dir;
}

afterAll(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

const embedded: Backend = {
  name: 'embedded',
  async setup() {},
  async open() {
    return openEmbeddedStore(await tempDir(), { logger: quiet });
  },
  async teardown() {},
};

let etcd: RunningEtcd | undefined;
const etcdBackend: Backend = {
  name: 'etcd',
  async setup() {
    etcd = await startEtcd();
  },
  open() {
    if (etcd === undefined) throw new Error('etcd not started');
    return openEtcdStore(etcd.endpoints, { logger: quiet });
  },
  async teardown() {
    await etcd?.stop();
    etcd = undefined;
  },
};

/** Every batch a watcher delivered, and a way to wait for a condition on them (no sleeps). */
interface Recorder {
  readonly batches: { revision: number; events: readonly WatchEvent[] }[];
  waitFor(done: (batches: Recorder['batches']) => boolean, timeoutMs?: number): Promise<void>;
  onEvents(events: readonly WatchEvent[], revision: number): void;
}

function recorder(): Recorder {
  const batches: Recorder['batches'] = [];
  let wake: (() => void) | undefined;
  return {
    batches,
    onEvents(events, revision) {
      batches.push({ revision, events });
      wake?.();
    },
    async waitFor(done, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (!done(batches)) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`watch condition not met; got ${JSON.stringify(batches)}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    },
  };
}

/** Polls `check` until true; throws after `timeoutMs`. */
async function eventually(check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return Date.now() - start;
}

describe.each([embedded, etcdBackend])('$name store', (backend) => {
  /** Cases only etcd can show; registered for the etcd backend alone (nothing is skipped). */
  const etcdOnly = (name: string, fn: () => Promise<void>): void => {
    if (backend.name === 'etcd') it(name, fn);
  };
  const open: TestStore[] = [];
  let store: TestStore;
  let p: string;

  beforeAll(() => backend.setup());
  afterAll(() => backend.teardown());
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
  });

  async function connect(): Promise<TestStore> {
    const s = await backend.open();
    open.push(s);
    return s;
  }

  beforeEach(async () => {
    store = await connect();
    p = `/weft/test/${randomUUID()}/`;
  });

  it('gets and lists keys by prefix, sorted, with the listing revision', async () => {
    const rev = await store.txn([
      { op: 'put', key: `${p}a/2`, value: 'two' },
      { op: 'put', key: `${p}a/1`, value: 'one' },
      { op: 'put', key: `${p}ab/x`, value: 'other' },
    ]);
    expect(await store.get(`${p}a/1`)).toEqual({
      key: `${p}a/1`,
      value: 'one',
      modRevision: rev,
      createRevision: rev,
      lease: undefined,
    });
    expect(await store.get(`${p}a/missing`)).toBeUndefined();
    const listing = await store.list(`${p}a/`);
    expect(listing.items.map((kv) => kv.key)).toEqual([`${p}a/1`, `${p}a/2`]);
    expect(listing.revision).toBe(rev);
    expect((await store.list(`${p}`)).items).toHaveLength(3);
    expect((await store.list(`${p}zzz/`)).items).toEqual([]);
  });

  it('applies a txn all at once as exactly one new revision; createRevision stays on update', async () => {
    const before = await store.revision();
    const r1 = await store.txn([
      { op: 'put', key: `${p}x`, value: '1' },
      { op: 'put', key: `${p}y`, value: '1' },
      { op: 'put', key: `${p}z`, value: '1' },
    ]);
    expect(r1).toBe(before + 1);
    expect(await store.revision()).toBe(r1);
    const items = (await store.list(p)).items;
    expect(items.map((kv) => kv.modRevision)).toEqual([r1, r1, r1]);
    const r2 = await store.txn([{ op: 'put', key: `${p}y`, value: '2' }]);
    expect(r2).toBe(r1 + 1);
    expect(await store.get(`${p}y`)).toMatchObject({ value: '2', modRevision: r2, createRevision: r1 });
  });

  it('rejects a txn whose condition fails, writing nothing, and names the key', async () => {
    const r1 = await store.txn([{ op: 'put', key: `${p}k`, value: 'v1' }]);
    const failing = store.txn(
      [
        { op: 'put', key: `${p}k`, value: 'v2' },
        { op: 'put', key: `${p}other`, value: 'x' },
      ],
      [
        { key: `${p}absent`, modRevision: 0 },
        { key: `${p}k`, modRevision: r1 - 1 },
      ],
    );
    await expect(failing).rejects.toBeInstanceOf(TxnConflictError);
    await expect(failing).rejects.toMatchObject({ key: `${p}k` });
    expect(await store.revision()).toBe(r1);
    expect(await store.get(`${p}other`)).toBeUndefined();
    expect((await store.get(`${p}k`))?.value).toBe('v1');
    // modRevision 0 means "missing": fails on an existing key, holds on an absent one.
    await expect(
      store.txn([{ op: 'put', key: `${p}k`, value: 'v2' }], [{ key: `${p}k`, modRevision: 0 }]),
    ).rejects.toMatchObject({
      name: 'TxnConflictError',
      key: `${p}k`,
    });
    const r2 = await store.txn(
      [{ op: 'put', key: `${p}k`, value: 'v2' }],
      [
        { key: `${p}k`, modRevision: r1 },
        { key: `${p}new`, modRevision: 0 },
      ],
    );
    expect(r2).toBe(r1 + 1);
  });

  it('lets exactly one of several concurrent create-if-missing txns win', async () => {
    const attempts = await Promise.allSettled(
      [1, 2, 3, 4, 5].map((n) =>
        store.txn(
          [{ op: 'put', key: `${p}leader`, value: String(n) }],
          [{ key: `${p}leader`, modRevision: 0 }],
        ),
      ),
    );
    expect(attempts.filter((a) => a.status === 'fulfilled')).toHaveLength(1);
    for (const a of attempts.filter((a) => a.status === 'rejected'))
      expect(a.reason).toBeInstanceOf(TxnConflictError);
  });

  it('deletes keys; deleting a missing key creates no revision', async () => {
    await store.txn([
      { op: 'put', key: `${p}a`, value: '1' },
      { op: 'put', key: `${p}b`, value: '1' },
    ]);
    const before = await store.revision();
    const r = await store.txn([{ op: 'delete', key: `${p}a` }]);
    expect(r).toBe(before + 1);
    expect(await store.get(`${p}a`)).toBeUndefined();
    expect((await store.list(p)).items.map((kv) => kv.key)).toEqual([`${p}b`]);
    expect(await store.txn([{ op: 'delete', key: `${p}missing` }])).toBe(r);
    expect(await store.revision()).toBe(r);
  });

  it('resolves an empty txn with the current revision, still checking its conditions', async () => {
    const r = await store.txn([{ op: 'put', key: `${p}k`, value: 'v' }]);
    expect(await store.txn([])).toBe(r);
    expect(await store.txn([], [{ key: `${p}k`, modRevision: r }])).toBe(r);
    await expect(store.txn([], [{ key: `${p}k`, modRevision: 0 }])).rejects.toBeInstanceOf(TxnConflictError);
    expect(await store.revision()).toBe(r);
  });

  it('rejects a txn naming a key twice, writing nothing', async () => {
    const before = await store.revision();
    await expect(
      store.txn([
        { op: 'put', key: `${p}k`, value: '1' },
        { op: 'delete', key: `${p}k` },
      ]),
    ).rejects.toThrow(/more than once/);
    expect(await store.revision()).toBe(before);
  });

  it('watches from a past revision: replays in order, grouped per revision, then streams live', async () => {
    const r1 = await store.txn([{ op: 'put', key: `${p}a`, value: '1' }]);
    const r2 = await store.txn([
      { op: 'put', key: `${p}b`, value: '2' },
      { op: 'put', key: `${p}a`, value: '3' },
    ]);
    const r3 = await store.txn([{ op: 'delete', key: `${p}a` }]);
    const rec = recorder();
    const watcher = await store.watch(p, r1, rec.onEvents);
    const r4 = await store.txn([{ op: 'put', key: `${p}c`, value: '4' }]);
    await rec.waitFor((b) => b.some((x) => x.revision === r4));
    await watcher.close();
    expect(rec.batches.map((b) => b.revision)).toEqual([r1, r2, r3, r4]);
    expect(rec.batches[1]?.events.map((e) => [e.type, e.key, e.value])).toEqual([
      ['put', `${p}b`, '2'],
      ['put', `${p}a`, '3'],
    ]);
    expect(rec.batches[2]?.events).toEqual([{ type: 'delete', key: `${p}a`, value: '3', modRevision: r3 }]);
    expect(rec.batches.flatMap((b) => b.events.map((e) => e.modRevision))).toEqual([r1, r2, r2, r3, r4]);
  });

  it('watches from now with revision 0, and only under its prefix', async () => {
    await store.txn([{ op: 'put', key: `${p}a/before`, value: 'x' }]);
    const rec = recorder();
    const watcher = await store.watch(`${p}a/`, 0, rec.onEvents);
    await store.txn([{ op: 'put', key: `${p}ab/sibling`, value: 'x' }]);
    const mixed = await store.txn([
      { op: 'put', key: `${p}b/other`, value: 'x' },
      { op: 'put', key: `${p}a/mine`, value: 'y' },
    ]);
    await rec.waitFor((b) => b.length > 0);
    await watcher.close();
    expect(rec.batches).toEqual([
      { revision: mixed, events: [{ type: 'put', key: `${p}a/mine`, value: 'y', modRevision: mixed }] },
    ]);
  });

  it('stops delivering after a watcher is closed', async () => {
    const rec = recorder();
    const first = await store.watch(p, 0, rec.onEvents);
    const tail = recorder();
    const second = await store.watch(p, 0, tail.onEvents);
    const r1 = await store.txn([{ op: 'put', key: `${p}a`, value: '1' }]);
    await rec.waitFor((b) => b.length === 1);
    await first.close();
    const r2 = await store.txn([{ op: 'put', key: `${p}a`, value: '2' }]);
    await tail.waitFor((b) => b.some((x) => x.revision === r2));
    await second.close();
    expect(rec.batches.map((b) => b.revision)).toEqual([r1]);
  });

  it('deletes a lease’s keys in one revision on revoke, and watchers see the deletes', async () => {
    const lease = await store.grantLease(30);
    expect(lease.ttlSeconds).toBe(30);
    const put = await store.txn([
      { op: 'put', key: `${p}a`, value: '1', lease: lease.id },
      { op: 'put', key: `${p}b`, value: '2', lease: lease.id },
      { op: 'put', key: `${p}plain`, value: '3' },
    ]);
    expect((await store.get(`${p}a`))?.lease).toBe(lease.id);
    expect((await store.get(`${p}plain`))?.lease).toBeUndefined();
    const rec = recorder();
    const watcher = await store.watch(p, put + 1, rec.onEvents);
    await lease.revoke();
    await rec.waitFor((b) => b.length > 0);
    await watcher.close();
    expect(rec.batches).toEqual([
      {
        revision: put + 1,
        events: [
          { type: 'delete', key: `${p}a`, value: '1', modRevision: put + 1 },
          { type: 'delete', key: `${p}b`, value: '2', modRevision: put + 1 },
        ],
      },
    ]);
    expect((await store.list(p)).items.map((kv) => kv.key)).toEqual([`${p}plain`]);
    await lease.revoke(); // idempotent
    await expect(
      store.txn([{ op: 'put', key: `${p}c`, value: 'x', lease: lease.id }]),
    ).rejects.toBeInstanceOf(LeaseNotFoundError);
    expect(await store.revision()).toBe(put + 1);
  });

  it('detaches a key from its lease when it is put again without one', async () => {
    const lease = await store.grantLease(30);
    await store.txn([{ op: 'put', key: `${p}k`, value: '1', lease: lease.id }]);
    await store.txn([{ op: 'put', key: `${p}k`, value: '2' }]);
    await lease.revoke();
    expect(await store.get(`${p}k`)).toMatchObject({ value: '2', lease: undefined });
  });

  it('throws RevisionCompactedError when watching from a compacted revision', async () => {
    const r1 = await store.txn([{ op: 'put', key: `${p}a`, value: '1' }]);
    const r2 = await store.txn([{ op: 'put', key: `${p}a`, value: '2' }]);
    await store.compact(r2);
    await expect(store.watch(p, r1, () => {})).rejects.toBeInstanceOf(RevisionCompactedError);
    const rec = recorder();
    const watcher = await store.watch(p, r2, rec.onEvents);
    await rec.waitFor((b) => b.length === 1);
    await watcher.close();
    expect(rec.batches[0]?.revision).toBe(r2);
  });

  it('stores, lists and watches 1 MiB values', async () => {
    const big = 'x'.repeat(1024 * 1024 - 7) + 'ünïcødé'.slice(0, 7);
    const rec = recorder();
    const watcher = await store.watch(p, 0, rec.onEvents);
    const r = await store.txn([{ op: 'put', key: `${p}big`, value: big }]);
    expect((await store.get(`${p}big`))?.value).toBe(big);
    expect((await store.list(p)).items[0]?.value).toBe(big);
    await rec.waitFor((b) => b.length === 1);
    await watcher.close();
    expect(rec.batches[0]?.revision).toBe(r);
    expect(rec.batches[0]?.events[0]?.value).toBe(big);
  });

  etcdOnly('expires a lease whose owner disappears without revoking', async () => {
    const owner = await backend.open();
    const lease = await owner.grantLease(2);
    await owner.txn([{ op: 'put', key: `${p}owned`, value: 'x', lease: lease.id }]);
    expect((await store.get(`${p}owned`))?.lease).toBe(lease.id);
    const rec = recorder();
    const watcher = await store.watch(p, 0, rec.onEvents);
    await owner.close();
    await eventually(async () => (await store.get(`${p}owned`)) === undefined, 3500);
    await rec.waitFor((b) =>
      b.some((x) => x.events.some((e) => e.type === 'delete' && e.key === `${p}owned`)),
    );
    await watcher.close();
  });

  etcdOnly('reports a lease etcd revoked behind its back to onLost', async () => {
    const lease = await store.grantLease(2);
    await store.txn([{ op: 'put', key: `${p}k`, value: 'x', lease: lease.id }]);
    const lost = new Promise<Error>((resolve) => lease.onLost?.(resolve));
    const other = new Etcd3({ hosts: etcd?.endpoints ?? [] });
    try {
      await other.leaseClient.leaseRevoke({ ID: lease.id });
    } finally {
      other.close();
    }
    expect(await lost).toBeInstanceOf(Error);
    expect(await store.get(`${p}k`)).toBeUndefined();
    await lease.revoke(); // a lost lease revokes as a no-op
  });

  etcdOnly('is what openStore picks when etcd endpoints are given', async () => {
    const picked = await openStore({ etcd: etcd?.endpoints ?? [], dataDir: '/nonexistent', logger: quiet });
    const r = await picked.txn([{ op: 'put', key: `${p}k`, value: 'v' }]);
    expect((await store.get(`${p}k`))?.modRevision).toBe(r);
    await picked.close();
  });
});

describe('embedded store on disk', () => {
  it('survives a restart: same keys and revision; keys of leases are deleted in one txn', async () => {
    const dir = await tempDir();
    const first = await openEmbeddedStore(dir, { logger: quiet });
    await first.txn([{ op: 'put', key: '/weft/a', value: '1' }]);
    const r2 = await first.txn([
      { op: 'put', key: '/weft/a', value: '2' },
      { op: 'put', key: '/weft/b', value: 'b' },
    ]);
    const before = await first.list('/weft/');
    await first.close();
    const second = await openEmbeddedStore(dir, { logger: quiet });
    expect(await second.list('/weft/')).toEqual(before);
    expect(await second.revision()).toBe(r2);
    const lease = await second.grantLease(10);
    const r3 = await second.txn([{ op: 'put', key: '/weft/leased', value: 'x', lease: lease.id }]);
    await second.close();
    const third = await openEmbeddedStore(dir, { logger: quiet });
    expect(await third.get('/weft/leased')).toBeUndefined();
    expect(await third.revision()).toBe(r3 + 1);
    expect((await third.list('/weft/')).items).toEqual(before.items);
    await third.close();
  });

  it('recovers after a crash from the snapshot plus the log, and replays the log to watchers', async () => {
    const dir = await tempDir();
    const live = await openEmbeddedStore(dir, { logger: quiet, snapshotEveryTxns: 5 });
    for (let i = 1; i <= 12; i++) await live.txn([{ op: 'put', key: `/weft/k${i % 4}`, value: String(i) }]);
    const expected = await live.list('/weft/');
    // A crash image: the files as they are now, without the snapshot close() would write.
    const crashed = await tempDir();
    await copyData(dir, crashed);
    await live.close();
    const recovered = await openEmbeddedStore(crashed, { logger: quiet });
    expect(await recovered.list('/weft/')).toEqual(expected);
    const rec = recorder();
    const watcher = await recovered.watch('/weft/', 11, rec.onEvents);
    await rec.waitFor((b) => b.length === 2);
    expect(rec.batches.map((b) => b.revision)).toEqual([11, 12]);
    await expect(recovered.watch('/weft/', 3, () => {})).rejects.toBeInstanceOf(RevisionCompactedError);
    await watcher.close();
    await recovered.close();
  });

  it('ignores a torn last log line, and keeps appending after the good ones', async () => {
    const dir = await tempDir();
    const live = await openEmbeddedStore(dir, { logger: quiet });
    await live.txn([{ op: 'put', key: '/weft/a', value: '1' }]);
    await live.txn([{ op: 'put', key: '/weft/b', value: '2' }]);
    const crashed = await tempDir();
    await copyData(dir, crashed);
    await live.close();
    await appendFile(join(crashed, 'wal.log'), '{"rev":3,"ops":[{"op":"put","key":"/weft/c","val');
    const warnings: string[] = [];
    const reopened = await openEmbeddedStore(crashed, {
      logger: { warn: (_, message) => warnings.push(message) },
    });
    expect(warnings).toEqual([expect.stringMatching(/torn/)]);
    expect(await reopened.revision()).toBe(2);
    expect(await reopened.get('/weft/c')).toBeUndefined();
    expect(await reopened.txn([{ op: 'put', key: '/weft/c', value: '3' }])).toBe(3);
    const log = await readFile(join(crashed, 'wal.log'), 'utf8');
    expect(
      log
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line).rev),
    ).toEqual([1, 2, 3]);
    await reopened.close();
    const again = await openEmbeddedStore(crashed, { logger: quiet });
    expect((await again.get('/weft/c'))?.value).toBe('3');
    await again.close();
  });

  it('refuses a log that is corrupt before its last line', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'wal.log'), 'garbage\n{"rev":1,"ops":[]}\n');
    await expect(openEmbeddedStore(dir, { logger: quiet })).rejects.toThrow(/corrupt/);
    // The failed open released the lock.
    await writeFile(join(dir, 'wal.log'), '');
    await (await openEmbeddedStore(dir, { logger: quiet })).close();
  });

  it('lets one process own a data dir; a lock left by a dead process is taken over', async () => {
    const dir = await tempDir();
    const first = await openEmbeddedStore(dir, { logger: quiet });
    await expect(openEmbeddedStore(dir, { logger: quiet })).rejects.toThrow(/in use by process/);
    await first.close();
    const deadPid = spawnSync(process.execPath, ['-e', '']).pid;
    await writeFile(join(dir, 'LOCK'), `${deadPid}\n`);
    const second = await openEmbeddedStore(dir, { logger: quiet });
    expect((await readFile(join(dir, 'LOCK'), 'utf8')).trim()).toBe(String(process.pid));
    await second.close();
  });

  it('keeps a bounded watch history', async () => {
    const store: EmbeddedStore = await openEmbeddedStore(await tempDir(), {
      logger: quiet,
      historyRevisions: 3,
    });
    for (let i = 1; i <= 6; i++) await store.txn([{ op: 'put', key: '/weft/k', value: String(i) }]);
    await expect(store.watch('/weft/', 3, () => {})).rejects.toMatchObject({ oldestRevision: 4 });
    const rec = recorder();
    const watcher = await store.watch('/weft/', 4, rec.onEvents);
    await rec.waitFor((b) => b.length === 3);
    await watcher.close();
    await store.close();
    await expect(store.get('/weft/k')).rejects.toThrow(/closed/);
  });

  it('openStore picks the embedded backend without etcd endpoints', async () => {
    const dir = await tempDir();
    const store = await openStore({ dataDir: dir, etcd: [], logger: quiet });
    expect(await store.txn([{ op: 'put', key: '/weft/x', value: '1' }])).toBe(1);
    await store.close();
  });
});

async function copyData(from: string, to: string): Promise<void> {
  for (const name of ['wal.log', 'snapshot.json']) {
    await copyFile(join(from, name), join(to, name)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
  }
}
