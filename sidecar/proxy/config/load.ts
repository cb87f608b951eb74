/**
 * Loads a bootstrap file (YAML or JSON; YAML 1.2 via the `yaml` library) into a `Bootstrap`.
 * The document is checked against `weft.v1.Bootstrap` in proto/weft/v1/config.proto and for
 * internal consistency before anything uses it.
 *
 * Throws `ConfigError` listing every problem with its field path, or a plain Error when the
 * file cannot be read or parsed (with the file name and the parser's line/column).
 */
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { ConfigError } from './errors.ts';
import { proxyConfigOf } from './model.ts';
import { checkAgainstProto } from './schema.ts';
import type { Bootstrap } from './types.ts';
import { checkConsistency } from './validate.ts';

/** Parses and checks bootstrap text; `source` names it in errors. */
export function parseBootstrap(text: string, source: string): Bootstrap {
  let doc: unknown;
  try {
    doc = parse(text, { prettyErrors: true });
  } catch (err) {
    throw new Error(`${source}: not valid YAML or JSON: ${(err as Error).message}`);
  }
  const schemaProblems = checkAgainstProto('weft.v1.Bootstrap', doc ?? {});
  if (schemaProblems.length > 0) throw new ConfigError(schemaProblems, source);
  const bootstrap = (doc ?? {}) as Bootstrap;
  const problems = checkConsistency(proxyConfigOf(bootstrap));
  if (problems.length > 0) throw new ConfigError(problems, source);
  return bootstrap;
}

/** Reads and checks a bootstrap file at `path`. */
export async function loadBootstrap(path: string): Promise<Bootstrap> {
  return parseBootstrap(await readFile(path, 'utf8'), path);
}
