/**
 * The embedded store's files in its data dir, and the single-owner lock on it.
 *
 *   LOCK           pid of the owning process (created atomically with its content, via link(2),
 *                  which fails with EEXIST like O_EXCL); a lock whose pid is dead is taken over
 *   snapshot.json  `{ version: 1, revision, kvs: KeyValue[] }`, written atomically: temp file,
 *                  fsync, rename over, fsync the directory
 *   wal.log        one JSON line per committed txn since the snapshot:
 *                  `{ rev, ops: [{ op: 'put', key, value, lease? } | { op: 'delete', key }] }`,
 *                  fsync'd (fdatasync) before the txn resolves
 *
 * Invariants: a revision is durable once its line is in wal.log or the snapshot holds it. After a
 * snapshot the log is truncated; a crash between the two leaves log lines at or below the
 * snapshot revision, which recovery skips. A torn last line (a crash mid-append) is dropped and
 * cut off the file; an unreadable line before the last one is corruption and fails the open.
 */
import { randomUUID } from 'node:crypto';
import { type FileHandle, link, mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { KeyValue } from './types.ts';

export type LoggedOp =
  | { readonly op: 'put'; readonly key: string; readonly value: string; readonly lease?: string }
  | { readonly op: 'delete'; readonly key: string };

/** One committed txn as logged: its revision and the changes it made (no no-op deletes). */
export interface LoggedTxn {
  readonly rev: number;
  readonly ops: readonly LoggedOp[];
}

export interface Snapshot {
  readonly revision: number;
  readonly kvs: readonly KeyValue[];
}

/** What an open found on disk: the snapshot (revision 0, empty, when none) and the log after it. */
export interface Recovered {
  readonly snapshot: Snapshot;
  /** Log entries in file order, including any at or below the snapshot revision. */
  readonly log: readonly LoggedTxn[];
  /** True when a torn last line was dropped. */
  readonly tornTail: boolean;
}

const LOCK = 'LOCK';
const SNAPSHOT = 'snapshot.json';
const WAL = 'wal.log';

export class DataFiles {
  readonly #dir: string;
  readonly #wal: FileHandle;
  #closed = false;

  private constructor(dir: string, wal: FileHandle) {
    this.#dir = dir;
    this.#wal = wal;
  }

  /**
   * Creates `dir` if needed, takes its lock and reads what is there.
   * Throws when another live process holds the lock, or when the snapshot or a log line before the
   * last is unreadable.
   */
  static async open(dir: string): Promise<{ files: DataFiles; recovered: Recovered }> {
    await mkdir(dir, { recursive: true });
    await acquireLock(dir);
    try {
      const snapshot = await readSnapshot(join(dir, SNAPSHOT));
      const wal = await open(join(dir, WAL), 'a');
      try {
        const { log, goodBytes, tornTail } = parseLog(await readFile(join(dir, WAL)));
        if (tornTail) {
          await wal.truncate(goodBytes);
          await wal.sync();
        }
        await syncDir(dir);
        return { files: new DataFiles(dir, wal), recovered: { snapshot, log, tornTail } };
      } catch (error) {
        await wal.close();
        throw error;
      }
    } catch (error) {
      await rm(join(dir, LOCK), { force: true });
      throw error;
    }
  }

  /** Appends one txn line and fdatasyncs it. A failure leaves the log in an unknown state. */
  async append(entry: LoggedTxn): Promise<void> {
    const bytes = Buffer.from(`${JSON.stringify(entry)}\n`);
    let offset = 0;
    while (offset < bytes.length) {
      const { bytesWritten } = await this.#wal.write(bytes, offset, bytes.length - offset);
      offset += bytesWritten;
    }
    await this.#wal.datasync();
  }

  /** Writes `snapshot` atomically, then empties the log (every logged revision is in it). */
  async writeSnapshot(snapshot: Snapshot): Promise<void> {
    const path = join(this.#dir, SNAPSHOT);
    const temp = `${path}.tmp`;
    const file = await open(temp, 'w');
    try {
      await file.writeFile(JSON.stringify({ version: 1, revision: snapshot.revision, kvs: snapshot.kvs }));
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
    await syncDir(this.#dir);
    await this.#wal.truncate(0);
    await this.#wal.sync();
  }

  /** Closes the log and releases the lock. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.#wal.close();
    } finally {
      await rm(join(this.#dir, LOCK), { force: true });
    }
  }
}

/**
 * Takes `dir/LOCK` for this process. The pid is written to a private temp file first and linked
 * into place, so a lock file always holds its pid. A lock left by a dead process is moved aside
 * (and checked to be the one read) before retrying.
 */
async function acquireLock(dir: string): Promise<void> {
  const path = join(dir, LOCK);
  const temp = join(dir, `${LOCK}.${process.pid}.${randomUUID()}.tmp`);
  await writeFile(temp, `${process.pid}\n`);
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await link(temp, path);
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const owner = await readPid(path);
      if (owner !== undefined && isAlive(owner)) {
        throw new Error(`store data dir ${dir} is in use by process ${owner} (lock file ${path})`);
      }
      const aside = join(dir, `${LOCK}.${process.pid}.stale`);
      try {
        await rename(path, aside);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw error;
      }
      if ((await readPid(aside)) !== owner) {
        // Another process took the stale lock between our read and our rename: give it back.
        await rename(aside, path);
        throw new Error(`store data dir ${dir} is being taken over by another process (lock file ${path})`);
      }
      await rm(aside, { force: true });
    }
    throw new Error(`could not take the lock ${path}`);
  } finally {
    await rm(temp, { force: true });
  }
}

async function readPid(path: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt(await readFile(path, 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function readSnapshot(path: string): Promise<Snapshot> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { revision: 0, kvs: [] };
    throw error;
  }
  const data = JSON.parse(text) as { version?: unknown; revision?: unknown; kvs?: unknown };
  if (data.version !== 1 || typeof data.revision !== 'number' || !Array.isArray(data.kvs)) {
    throw new Error(`store snapshot ${path} is not a version 1 snapshot`);
  }
  const kvs = (data.kvs as Partial<KeyValue>[]).map((kv) => {
    if (typeof kv.key !== 'string' || typeof kv.value !== 'string' || typeof kv.modRevision !== 'number') {
      throw new Error(`store snapshot ${path} holds a malformed key`);
    }
    return {
      key: kv.key,
      value: kv.value,
      modRevision: kv.modRevision,
      createRevision: kv.createRevision ?? kv.modRevision,
      lease: kv.lease ?? undefined,
    };
  });
  return { revision: data.revision, kvs };
}

/** Splits the log into entries; a last line without newline or unparsable is a torn tail. */
function parseLog(bytes: Buffer): { log: LoggedTxn[]; goodBytes: number; tornTail: boolean } {
  const log: LoggedTxn[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const nl = bytes.indexOf(0x0a, pos);
    if (nl === -1) return { log, goodBytes: pos, tornTail: true };
    const entry = parseEntry(bytes.toString('utf8', pos, nl));
    if (entry === undefined) {
      if (nl + 1 === bytes.length) return { log, goodBytes: pos, tornTail: true };
      throw new Error(`store log ${WAL} is corrupt at byte ${pos} (not the last line)`);
    }
    log.push(entry);
    pos = nl + 1;
  }
  return { log, goodBytes: pos, tornTail: false };
}

function parseEntry(line: string): LoggedTxn | undefined {
  try {
    const entry = JSON.parse(line) as Partial<LoggedTxn>;
    if (typeof entry.rev !== 'number' || !Array.isArray(entry.ops)) return undefined;
    return entry as LoggedTxn;
  } catch {
    return undefined;
  }
}
