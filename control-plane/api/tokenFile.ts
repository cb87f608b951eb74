/**
 * The admin API token on disk: `<dataDir>/admin-token`, 32 random bytes as 64 hex characters,
 * file mode 0600. Created on the control plane's first start, read on every later start; the CLI
 * reads the same file when run from the data directory's parent (`./.weft/admin-token`).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** File name of the token inside the data directory. */
export const TOKEN_FILE = 'admin-token';

/**
 * Returns the token in `<dataDir>/admin-token`, creating the directory and the file (mode 0600,
 * exclusive create) when missing. Throws when the file exists but is empty, or on I/O errors.
 */
export async function loadOrCreateToken(dataDir: string): Promise<string> {
  const file = join(dataDir, TOKEN_FILE);
  try {
    return await readToken(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString('hex');
  try {
    // 'wx': never overwrite a token another process created in the meantime.
    await writeFile(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
    return token;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readToken(file);
    throw err;
  }
}

/** Reads a token file (trimmed). Throws ENOENT when missing and an Error when empty. */
export async function readToken(file: string): Promise<string> {
  const token = (await readFile(file, 'utf8')).trim();
  if (token.length === 0) throw new Error(`token file ${file} is empty`);
  return token;
}
