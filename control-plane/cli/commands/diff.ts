/**
 * `weft diff -f FILE|DIR|-`: what `apply` would change, as unified diffs of the stored YAML
 * against the submitted YAML (server-computed). Exit 0 when nothing would change, 1 when there are
 * differences (as `kubectl diff`), 1 on invalid documents too (with the errors on stderr).
 */
import type { Command } from 'commander';
import { EXIT } from '../errors.ts';
import { readDocumentsAsYaml } from '../inputs.ts';
import { out, paint } from '../output.ts';
import { type ConnectionOptions, clientFor, collect, connectionOptions, run, usage } from './common.ts';

interface DiffOptions extends ConnectionOptions {
  readonly filename?: string[];
}

/** Colours a unified diff line by line (only when colour is enabled). */
function colourDiff(text: string): string {
  return text
    .split('\n')
    .map((line) =>
      line.startsWith('+') && !line.startsWith('+++')
        ? paint('green', line)
        : line.startsWith('-') && !line.startsWith('---')
          ? paint('red', line)
          : line,
    )
    .join('\n');
}

export function registerDiff(program: Command): void {
  const cmd = program
    .command('diff')
    .description('show what apply would change; exit 1 when there are differences')
    .option('-f, --filename <path>', 'file, directory or - for stdin; repeatable', collect);
  connectionOptions(cmd).action(
    run(async (opts: DiffOptions) => {
      if (!opts.filename?.length) throw usage('diff needs -f FILE|DIR|-');
      const client = await clientFor(opts);
      const { diffs } = await client.diff(await readDocumentsAsYaml(opts.filename, { validate: true }));
      const changed = diffs.filter((d) => d.action !== 'unchanged');
      for (const d of changed) process.stdout.write(colourDiff(d.diff));
      if (changed.length === 0) out(`no differences (${diffs.length} resources unchanged)`);
      process.exitCode = changed.length > 0 ? EXIT.failure : EXIT.ok;
    }),
  );
}
