/**
 * `weft apply -f FILE|DIR|- [--dry-run] [--wait] [--timeout 30s] [-o table|json|yaml]`
 *
 * Validates every document locally (errors name file and document; nothing is sent when any is
 * invalid), sends them to `POST /v1/apply` (all or nothing, validated again by the server), prints
 * `<id> <action>` per document and the revision. `--wait` then asks `GET /v1/rollout` for the receipt and prints each proxy as
 * synced, NACKed (with the reason) or pending. Exit 1 on invalid documents, any NACK, or a
 * rollout still incomplete at the timeout.
 */
import { type Command, Option } from 'commander';
import type { ApplyResponse, RolloutReceipt } from '../../api/types.ts';
import { CliError } from '../errors.ts';
import { readDocumentsAsYaml } from '../inputs.ts';
import { type Format, out, paint, printData, table } from '../output.ts';
import {
  type ConnectionOptions,
  clientFor,
  collect,
  connectionOptions,
  durationMs,
  outputOption,
  run,
  usage,
} from './common.ts';

interface ApplyOptions extends ConnectionOptions {
  readonly filename?: string[];
  readonly dryRun?: boolean;
  readonly wait?: boolean;
  readonly timeout: number;
  readonly output: Format;
}

/** Prints the per-proxy rollout receipt as a table. */
export function printReceipt(r: RolloutReceipt): void {
  const rows = [
    ...r.synced.map((id) => [id, paint('green', 'synced'), '']),
    ...r.nacked.map((n) => [n.proxyId, paint('red', 'NACKed'), `version ${n.version}: ${n.reason}`]),
    ...r.pending.map((id) => [id, paint('yellow', 'pending'), 'timed out waiting']),
  ];
  out(
    `rollout of revision ${r.revision}: ${r.synced.length} synced, ${r.nacked.length} NACKed, ${r.pending.length} pending`,
  );
  if (rows.length > 0) out(table(['PROXY', 'STATE', 'DETAIL'], rows));
}

function printApplied(res: ApplyResponse): void {
  for (const r of res.results) out(`${r.id} ${r.action}${res.dryRun ? ' (dry run)' : ''}`);
  out(`revision ${res.revision}`);
}

export function registerApply(program: Command): void {
  const cmd = program
    .command('apply')
    .description('create or update resources from files, a directory or stdin (all or nothing)')
    .option(
      '-f, --filename <path>',
      'file, directory (*.yaml, *.yml, *.json) or - for stdin; repeatable',
      collect,
    )
    .option('--dry-run', 'validate and report what would change without writing')
    .option('--wait', 'wait until every connected proxy has taken the new revision')
    .addOption(
      new Option('--timeout <duration>', 'how long --wait waits (e.g. 500ms, 30s, 2m)')
        .argParser(durationMs)
        .default(30_000, '30s'),
    );
  outputOption(connectionOptions(cmd)).action(
    run(async (opts: ApplyOptions) => {
      if (!opts.filename?.length) throw usage('apply needs -f FILE|DIR|-');
      const yaml = await readDocumentsAsYaml(opts.filename, { validate: true });
      const client = await clientFor(opts);
      const applied = await client.apply(yaml, opts.dryRun === true);
      // Tables: report the write at once, then wait; machine formats print one document at the end.
      if (opts.output === 'table') printApplied(applied);
      const receipt =
        opts.wait && !opts.dryRun ? await client.rollout(applied.revision, opts.timeout) : undefined;
      if (opts.output === 'table') {
        if (receipt) printReceipt(receipt);
      } else {
        printData(receipt ? { ...applied, rollout: receipt } : applied, opts.output);
      }
      if (receipt && (receipt.nacked.length > 0 || !receipt.complete)) {
        const { nacked, pending } = receipt;
        throw new CliError(
          `rollout of revision ${receipt.revision} failed: ${nacked.length} NACKed, ${pending.length} pending after ${opts.timeout} ms`,
        );
      }
    }),
  );
}
