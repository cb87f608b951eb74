/**
 * The sidecar's config cache: the last ACKed snapshot on disk, so a restarted sidecar serves its
 * last good config before (or without) reaching the control plane.
 *
 * File format (JSON): `{ "version": "<store revision>", "config": { listeners, routes, clusters,
 * endpoints, certificates? } }` (mode 0600: a gateway's certificates may carry private keys), the config in the proto3 JSON mapping of proto/weft/v1/config.proto.
 *
 * Invariants: a write is atomic (temp file in the same folder, fsync, rename, fsync of the
 * folder), so a reader sees the old file or the new one, never a mix; a read returns a whole
 * config that passed the proto schema check, or throws — never a half config.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { ProxyConfig } from '../proxy/config/model.ts';
import { checkAgainstProto } from '../proxy/config/schema.ts';

/** A snapshot as cached: the config and the version it was ACKed as. */
export interface CachedSnapshot {
  readonly version: string;
  readonly config: ProxyConfig;
}

const LISTS = ['listeners', 'routes', 'clusters', 'endpoints'] as const;

/** Thrown by `loadCached` when the cache file exists but does not hold a whole, valid snapshot. */
export class CorruptCacheError extends Error {
  readonly path: string;
  constructor(path: string, reason: string) {
    super(`config cache ${path} is corrupt: ${reason}`);
    this.name = 'CorruptCacheError';
    this.path = path;
  }
}

/**
 * Reads the cached snapshot at `path`. Resolves undefined when the file does not exist; throws
 * `CorruptCacheError` when it is not JSON, lacks the version or one of the four lists, or fails
 * the proto schema check; throws the file system error for other read failures.
 */
export async function loadCached(path: string): Promise<CachedSnapshot | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new CorruptCacheError(path, `not JSON (${(err as Error).message})`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new CorruptCacheError(path, 'expected an object {version, config}');
  }
  const { version, config } = doc as { version?: unknown; config?: unknown };
  if (typeof version !== 'string' || version === '') {
    throw new CorruptCacheError(path, 'version: expected a non-empty string');
  }
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw new CorruptCacheError(path, 'config: expected an object');
  }
  for (const list of LISTS) {
    if (!Array.isArray((config as Record<string, unknown>)[list])) {
      throw new CorruptCacheError(path, `config.${list}: expected a list`);
    }
  }
  const problems = checkAgainstProto('weft.v1.Bootstrap', config);
  if (problems.length > 0) throw new CorruptCacheError(path, `config: ${problems.join('; ')}`);
  return { version, config: config as ProxyConfig };
}

/**
 * Writes `snapshot` to `path` atomically (temp + fsync + rename + folder fsync). The config is
 * written with all four lists present. Throws the file system error (the old file stays intact).
 */
export async function writeCached(path: string, snapshot: CachedSnapshot): Promise<void> {
  const { config } = snapshot;
  const doc = {
    version: snapshot.version,
    config: {
      listeners: config.listeners,
      routes: config.routes,
      clusters: config.clusters,
      endpoints: config.endpoints,
      // Server certificates (a gateway's TLS termination): the listeners name them. The file is 0600.
      ...(config.certificates !== undefined && { certificates: config.certificates }),
    },
  };
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const file = await open(temp, 'w', 0o600);
  try {
    await file.writeFile(`${JSON.stringify(doc)}\n`, 'utf8');
    await file.sync();
  } catch (err) {
    await file.close();
    await rm(temp, { force: true });
    throw err;
  }
  await file.close();
  try {
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  const folder = await open(dir, 'r');
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}
