/**
 * `weft delete KIND NAME [-n NS]` or `weft delete -f FILE|DIR|-`
 *
 * Prints `<id> deleted` per resource and the revision. Exit 1 when a named resource does not
 * exist (the others in the same `-f` input are still deleted, in one transaction).
 */
import type { Command } from 'commander';
import { CliError } from '../errors.ts';
import { readDocumentsAsYaml } from '../inputs.ts';
import { resolveKind } from '../kinds.ts';
import { type Format, out, printData } from '../output.ts';
import {
  type ConnectionOptions,
  clientFor,
  collect,
  connectionOptions,
  outputOption,
  run,
  usage,
} from './common.ts';

interface DeleteOptions extends ConnectionOptions {
  readonly filename?: string[];
  readonly namespace?: string;
  readonly output: Format;
}

export function registerDelete(program: Command): void {
  const cmd = program
    .command('delete')
    .description('delete resources by kind and name, or those named in files')
    .argument('[kind]', 'kind, e.g. httproute')
    .argument('[name]', 'resource name')
    .option('-f, --filename <path>', 'file, directory or - for stdin; repeatable', collect)
    .option('-n, --namespace <ns>', 'namespace', 'default');
  outputOption(connectionOptions(cmd)).action(
    run(async (kindName: string | undefined, name: string | undefined, opts: DeleteOptions) => {
      const client = await clientFor(opts);
      if (opts.filename?.length) {
        if (kindName !== undefined) throw usage('give either -f or KIND NAME, not both');
        const res = await client.deleteDocuments(await readDocumentsAsYaml(opts.filename));
        if (opts.output !== 'table') printData(res, opts.output);
        else {
          for (const r of res.results) out(`${r.id} ${r.action === 'deleted' ? 'deleted' : 'not found'}`);
          out(`revision ${res.revision}`);
        }
        const missing = res.results.filter((r) => r.action === 'notFound');
        if (missing.length > 0) throw new CliError(`${missing.length} resources not found`);
        return;
      }
      if (kindName === undefined || name === undefined) throw usage('delete needs KIND NAME or -f FILE');
      const kind = resolveKind(kindName);
      const namespace = opts.namespace ?? 'default';
      const res = await client.deleteOne(kind, namespace, name);
      if (opts.output !== 'table') printData({ id: `${kind}/${namespace}/${name}`, ...res }, opts.output);
      else out(`${kind}/${namespace}/${name} deleted`, `revision ${res.revision}`);
    }),
  );
}
