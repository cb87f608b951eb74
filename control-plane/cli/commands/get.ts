/**
 * `weft get KIND [NAME] [-n NS] [-A] [-o table|json|yaml]`
 *
 * KIND is case-insensitive, singular or plural. Without NAME lists the kind (in `-n NS`, or in
 * every namespace when `-n` is not given); with NAME shows one resource (exit 1 when missing).
 * The table shows NAMESPACE, NAME, REVISION (resourceVersion), AGE and, for routes, ACCEPTED
 * (from the route status' `Accepted` conditions).
 */
import type { Command } from 'commander';
import type { Resource } from '../../resources/types.ts';
import { resolveKind } from '../kinds.ts';
import { age, type Format, out, printData, table } from '../output.ts';
import { type ConnectionOptions, clientFor, connectionOptions, outputOption, run } from './common.ts';

interface GetOptions extends ConnectionOptions {
  readonly namespace?: string;
  readonly output: Format;
}

interface Condition {
  readonly type?: string;
  readonly status?: string;
  readonly reason?: string;
}

/** `True`/`False (<reason>)` from the Accepted conditions of a route's status; '-' when none. */
function accepted(r: Resource): string {
  const parents = (r.status as { parents?: { conditions?: Condition[] }[] } | undefined)?.parents ?? [];
  const conditions = parents.flatMap((p) => p.conditions ?? []).filter((c) => c.type === 'Accepted');
  if (conditions.length === 0) return '-';
  const rejected = conditions.find((c) => c.status !== 'True');
  return rejected ? `False (${rejected.reason ?? 'unknown'})` : 'True';
}

function printTable(items: readonly Resource[]): void {
  if (items.length === 0) {
    out('No resources found.');
    return;
  }
  const routes = items.some((r) => r.kind === 'HTTPRoute' || r.kind === 'GRPCRoute');
  const header = ['NAMESPACE', 'NAME', 'REVISION', 'AGE', ...(routes ? ['ACCEPTED'] : [])];
  const rows = items.map((r) => [
    r.metadata.namespace ?? 'default',
    r.metadata.name,
    r.metadata.resourceVersion ?? '-',
    age(r.metadata.creationTimestamp),
    ...(routes ? [accepted(r)] : []),
  ]);
  out(table(header, rows));
}

export function registerGet(program: Command): void {
  const cmd = program
    .command('get')
    .description('show resources of a kind, or one resource')
    .argument('<kind>', 'kind, e.g. httproute, HTTPRoutes, service')
    .argument('[name]', 'resource name')
    .option('-n, --namespace <ns>', 'namespace (default: all when listing, "default" for NAME)');
  outputOption(connectionOptions(cmd)).action(
    run(async (kindName: string, name: string | undefined, opts: GetOptions) => {
      const kind = resolveKind(kindName);
      const client = await clientFor(opts);
      if (name !== undefined) {
        const resource = await client.get(kind, opts.namespace ?? 'default', name);
        if (opts.output === 'table') printTable([resource]);
        else printData(resource, opts.output);
        return;
      }
      const list = await client.list(kind, opts.namespace);
      if (opts.output === 'table') printTable(list.items);
      else printData(list, opts.output);
    }),
  );
}
