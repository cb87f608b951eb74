/**
 * `weft validate -f FILE|DIR|-`: offline validation (no server). Prints every error
 * (`<Kind> <ns>/<name>: <field>: <reason>`) on stderr and exits 1 if there is any; else prints
 * how many resources are valid and exits 0.
 */
import type { Command } from 'commander';
import { validateResources } from '../../resources/validate.ts';
import { CliError } from '../errors.ts';
import { parseSources, readSources } from '../inputs.ts';
import { out } from '../output.ts';
import { collect, run, usage } from './common.ts';

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description('check resource files offline; exit 1 when any is invalid')
    .option('-f, --filename <path>', 'file, directory or - for stdin; repeatable', collect)
    .action(
      run(async (opts: { filename?: string[] }) => {
        if (!opts.filename?.length) throw usage('validate needs -f FILE|DIR|-');
        const { resources, errors } = validateResources(parseSources(await readSources(opts.filename)));
        if (errors.length > 0) {
          const n = errors.length;
          throw new CliError(`validation failed: ${n} ${n === 1 ? 'error' : 'errors'}`, 1, errors);
        }
        out(`${resources.length} resources valid`);
      }),
    );
}
