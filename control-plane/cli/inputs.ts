/**
 * Reading `-f FILE|DIR|-` for apply, delete, diff and validate.
 *
 * A directory contributes every `*.yaml`, `*.yml` and `*.json` file directly in it, sorted by
 * name; `-` reads stdin. Each file is parsed here with `parseDocuments` (so parse errors name the
 * file) and the documents are sent to the server as one YAML stream.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { parseDocuments } from '../resources/parse.ts';
import { validateResources } from '../resources/validate.ts';
import { CliError } from './errors.ts';

const EXTENSIONS = /\.(ya?ml|json)$/i;

/** One input source: its display name and text. */
export interface Source {
  readonly name: string;
  readonly text: string;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads the sources named by `-f` values. Throws `CliError` for missing paths or empty directories. */
export async function readSources(paths: readonly string[]): Promise<Source[]> {
  const sources: Source[] = [];
  for (const p of paths) {
    if (p === '-') {
      sources.push({ name: '<stdin>', text: await readStdin() });
      continue;
    }
    const info = await stat(p).catch(() => undefined);
    if (!info) throw new CliError(`${p}: no such file or directory`);
    if (info.isDirectory()) {
      const names = (await readdir(p)).filter((n) => EXTENSIONS.test(n)).sort();
      if (names.length === 0) throw new CliError(`${p}: no *.yaml, *.yml or *.json files`);
      for (const n of names) sources.push({ name: join(p, n), text: await readFile(join(p, n), 'utf8') });
    } else {
      sources.push({ name: p, text: await readFile(p, 'utf8') });
    }
  }
  return sources;
}

/** Parses every source; throws `CliError` with each parse error as a detail. */
export function parseSources(sources: readonly Source[]): unknown[] {
  const docs: unknown[] = [];
  const errors: string[] = [];
  for (const s of sources) {
    try {
      docs.push(...parseDocuments(s.text, s.name));
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  if (errors.length > 0) throw new CliError('cannot parse the input', 1, errors);
  if (docs.length === 0) throw new CliError('no documents in the input');
  return docs;
}

/**
 * Reads and parses `-f` values into one YAML stream for the API. With `validate`, the documents
 * are validated here first (the server validates again), so errors name the file and document
 * (`route.yaml doc #2`) and nothing is sent when any is invalid; throws `CliError` with each error.
 */
export async function readDocumentsAsYaml(
  paths: readonly string[],
  options: { validate?: boolean } = {},
): Promise<string> {
  const docs = parseSources(await readSources(paths));
  if (options.validate) {
    const { errors } = validateResources(docs);
    if (errors.length > 0)
      throw new CliError(
        `invalid resources: ${errors.length} ${errors.length === 1 ? 'error' : 'errors'}`,
        1,
        errors,
      );
  }
  return docs.map((d) => stringify(d)).join('---\n');
}
