/**
 * `weft token create|list|revoke`: join tokens, with which a workload gets its first certificate.
 *
 *   weft token create --service NAME [-n NS] [--service-account SA] [--ttl 24h] [-o table|json|yaml]
 *   weft token list [-o table|json|yaml]
 *   weft token revoke ID
 *
 * `create` prints the token (`<id>.<secret>`) once, alone on stdout (so `$(weft token create …)`
 * captures it), and what it is bound to on stderr; with `-o json|yaml` everything goes to stdout.
 * The control plane keeps only a hash of the secret: a lost token cannot be shown again.
 * A token is reusable until it expires (a restarting sidecar needs it again) unless revoked.
 */
import { type Command, InvalidArgumentError } from 'commander';
import type { TokenInfo } from '../../api/ca-routes.ts';
import { parseDurationMs } from '../../resources/duration.ts';
import { type Format, out, paint, printData, table } from '../output.ts';
import { type ConnectionOptions, clientFor, connectionOptions, outputOption, run } from './common.ts';

interface CreateOptions extends ConnectionOptions {
  readonly service: string;
  readonly namespace?: string;
  readonly serviceAccount?: string;
  readonly ttl?: string;
  readonly output: Format;
}

interface ListOptions extends ConnectionOptions {
  readonly output: Format;
}

/** A GEP-2257 duration flag (`30m`, `24h`), kept as text for the server. */
function gepDuration(value: string): string {
  try {
    parseDurationMs(value);
  } catch {
    throw new InvalidArgumentError('must be a duration like 30m, 24h or 720h');
  }
  return value;
}

/** `ns/<ns>/sa/<sa>`: the identity a token is bound to (the SPIFFE ID path, without the trust domain). */
function identityOf(t: TokenInfo): string {
  return `ns/${t.namespace}/sa/${t.serviceAccount}`;
}

function state(t: TokenInfo): string {
  return t.state === 'active'
    ? paint('green', 'active')
    : paint(t.state === 'revoked' ? 'red' : 'yellow', t.state);
}

export function registerToken(program: Command): void {
  const token = program.command('token').description('join tokens: create, list, revoke');

  const create = token
    .command('create')
    .description('mint a join token bound to a service identity (printed once)')
    .requiredOption('--service <name>', 'the service the workload runs as')
    .option('-n, --namespace <ns>', 'namespace of the identity (default "default")')
    .option('--service-account <sa>', 'service account of the identity (default: the service)')
    .option('--ttl <duration>', 'how long the token can be used, e.g. 30m, 24h (default 24h)', gepDuration);
  outputOption(connectionOptions(create)).action(
    run(async (opts: CreateOptions) => {
      const created = await (await clientFor(opts)).createToken({
        service: opts.service,
        ...(opts.namespace !== undefined && { namespace: opts.namespace }),
        ...(opts.serviceAccount !== undefined && { serviceAccount: opts.serviceAccount }),
        ...(opts.ttl !== undefined && { ttl: opts.ttl }),
      });
      if (opts.output !== 'table') {
        printData(created, opts.output);
        return;
      }
      out(created.token);
      process.stderr.write(
        `join token ${created.info.id} for ${identityOf(created.info)} (service ${created.info.service}), ` +
          `expires ${created.info.expiresAt}; it is shown only now\n`,
      );
    }),
  );

  const list = token.command('list').alias('ls').description('list join tokens (never their secrets)');
  outputOption(connectionOptions(list)).action(
    run(async (opts: ListOptions) => {
      const { items } = await (await clientFor(opts)).tokens();
      if (opts.output !== 'table') {
        printData({ items }, opts.output);
        return;
      }
      if (items.length === 0) {
        out('No join tokens.');
        return;
      }
      out(
        table(
          ['ID', 'SERVICE', 'IDENTITY', 'EXPIRES', 'STATE'],
          items.map((t) => [t.id, t.service, identityOf(t), t.expiresAt, state(t)]),
        ),
      );
    }),
  );

  const revoke = token
    .command('revoke')
    .description('revoke a join token: it no longer authenticates (issued certificates stay valid)')
    .argument('<id>', 'token id (the part before the dot)');
  connectionOptions(revoke).action(
    run(async (id: string, opts: ConnectionOptions) => {
      const info = await (await clientFor(opts)).revokeToken(id.split('.')[0] ?? id);
      out(`join token ${info.id} revoked (${identityOf(info)})`);
    }),
  );
}
