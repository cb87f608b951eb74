/**
 * `weft ca status|bundle|rotate`: the mesh certificate authority.
 *
 *   weft ca status [-o table|json|yaml]   the issuing CA and every root of the trust bundle
 *   weft ca bundle [-o json|yaml]         the trust bundle as PEM (default), for proxies to bootstrap
 *   weft ca rotate [--overlap 24h] [--propagation 30s]
 *                                         new root trusted now, issuing after the propagation time;
 *                                         the old root leaves the bundle after the overlap
 *                                         (default: the certificate TTL)
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { CaStatus } from '../../api/ca-routes.ts';
import { parseDurationMs } from '../../resources/duration.ts';
import { type Format, out, printData, table } from '../output.ts';
import { type ConnectionOptions, clientFor, connectionOptions, outputOption, run } from './common.ts';

interface StatusOptions extends ConnectionOptions {
  readonly output: Format;
}

interface BundleOptions extends ConnectionOptions {
  readonly output: 'pem' | 'json' | 'yaml';
}

interface RotateOptions extends ConnectionOptions {
  readonly overlap?: string;
  readonly propagation?: string;
  readonly output: Format;
}

function gepDuration(value: string): string {
  try {
    parseDurationMs(value);
  } catch {
    throw new InvalidArgumentError('must be a duration like 30m, 24h or 720h');
  }
  return value;
}

function printStatus(s: CaStatus): void {
  out(
    `trust domain: ${s.trustDomain}`,
    `issuing CA:   ${s.active.subject}${s.active.provided ? ' (operator-provided)' : ''}${s.active.intermediate ? ' (intermediate)' : ''}`,
    `              not after ${s.active.notAfter}; key ${s.keyEncrypted ? 'encrypted at rest' : 'NOT encrypted at rest'}`,
    '',
    table(
      ['ROOT', 'FINGERPRINT (SHA-256)', 'NOT AFTER', 'STATE'],
      s.roots.map((r) => [
        r.subject,
        `${r.fingerprintSha256.slice(0, 16)}…`,
        r.notAfter,
        r.state === 'active'
          ? 'active'
          : r.state === 'pending'
            ? `pending, issuing from ${r.activateAt ?? '?'}`
            : `retiring at ${r.retireAt ?? '?'}`,
      ]),
    ),
  );
}

export function registerCa(program: Command): void {
  const ca = program
    .command('ca')
    .description('the mesh certificate authority: status, trust bundle, rotation');

  const status = ca.command('status').description('show the issuing CA and the roots of the trust bundle');
  outputOption(connectionOptions(status)).action(
    run(async (opts: StatusOptions) => {
      const s = await (await clientFor(opts)).caStatus();
      if (opts.output === 'table') printStatus(s);
      else printData(s, opts.output);
    }),
  );

  const bundle = ca
    .command('bundle')
    .description('print the trust bundle (PEM) for proxies to bootstrap trust');
  connectionOptions(bundle)
    .addOption(
      new Option('-o, --output <format>', 'output format').choices(['pem', 'json', 'yaml']).default('pem'),
    )
    .action(
      run(async (opts: BundleOptions) => {
        const b = await (await clientFor(opts)).trustBundle();
        if (opts.output === 'pem') process.stdout.write(b.rootsPem.join(''));
        else printData(b, opts.output);
      }),
    );

  const rotate = ca
    .command('rotate')
    .description(
      'rotate the root: trust a new root now, issue from it after the propagation time, keep the old one trusted for the overlap',
    )
    .option(
      '--overlap <duration>',
      'how long the old root stays trusted after the switch (default: the certificate TTL)',
      gepDuration,
    )
    .option(
      '--propagation <duration>',
      'time for every proxy to receive the new root before it issues (default 30s; 0s switches at once)',
      gepDuration,
    );
  outputOption(connectionOptions(rotate)).action(
    run(async (opts: RotateOptions) => {
      const s = await (await clientFor(opts)).rotateCa(opts.overlap, opts.propagation);
      if (opts.output === 'table') printStatus(s);
      else printData(s, opts.output);
    }),
  );
}
