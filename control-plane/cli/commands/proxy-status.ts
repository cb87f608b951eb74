/**
 * `weft proxy-status [-o table|json|yaml]` (alias `ps`): every proxy with a status record, as the
 * discovery server wrote it. Columns: PROXY, SERVICE, NAMESPACE, CONNECTED (age), ACKED (last
 * ACKed version), SYNCED (newest store revision it runs), LAST NACK (version: reason).
 */
import type { Command } from 'commander';
import type { ProxyStatusRecord } from '../../api/types.ts';
import { age, type Format, out, paint, printData, table } from '../output.ts';
import { type ConnectionOptions, clientFor, connectionOptions, outputOption, run } from './common.ts';

interface StatusOptions extends ConnectionOptions {
  readonly output: Format;
}

function row(p: ProxyStatusRecord): string[] {
  return [
    p.proxyId,
    p.identity.service,
    p.identity.namespace,
    p.connected ? age(p.connectedAt) : 'no',
    p.ackedVersion || '-',
    p.syncedRevision > 0 ? String(p.syncedRevision) : '-',
    p.lastNack ? paint('red', `${p.lastNack.version}: ${p.lastNack.reason.replace(/\s*\n\s*/g, ' ')}`) : '-',
  ];
}

export function registerProxyStatus(program: Command): void {
  const cmd = program
    .command('proxy-status')
    .alias('ps')
    .description('show each connected proxy and the config version it runs');
  outputOption(connectionOptions(cmd)).action(
    run(async (opts: StatusOptions) => {
      const list = await (await clientFor(opts)).proxies();
      if (opts.output !== 'table') {
        printData(list, opts.output);
        return;
      }
      if (list.items.length === 0) {
        out('No proxies connected.');
        return;
      }
      out(
        table(
          ['PROXY', 'SERVICE', 'NAMESPACE', 'CONNECTED', 'ACKED', 'SYNCED', 'LAST NACK'],
          list.items.map(row),
        ),
      );
    }),
  );
}
