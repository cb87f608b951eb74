#!/usr/bin/env node
/**
 * `weft`: the one binary of the mesh, with a subcommand per role (commander parses arguments).
 *
 *   weft sidecar --config bootstrap.yaml [--admin-port N] [--access-log] [--access-log-sample-rate R]
 *   weft version
 *
 * Exit codes: 0 success, 1 invalid configuration or runtime failure, 2 bad usage.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError } from '../../sidecar/proxy/config/errors.ts';
import { projectRoot } from '../../sidecar/proxy/config/root.ts';
import { runSidecar } from '../../sidecar/run.ts';

const pkg = JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')) as { version: string };

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('must be a port 0..65535');
  return n;
}

function fraction(value: string): number {
  const n = Number(value);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError('must be a number from 0 to 1');
  return n;
}

const program = new Command('weft')
  .description('Weft service mesh')
  .version(pkg.version, '-v, --version')
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
  .showHelpAfterError();

program
  .command('sidecar')
  .description('run a sidecar proxy on a static bootstrap file (weft.v1.Bootstrap, YAML or JSON)')
  .requiredOption('-c, --config <file>', 'bootstrap file')
  .option('--admin-port <port>', 'admin listener port (overrides the bootstrap; default 15000)', port)
  .option('--access-log', 'write an access log line for every request')
  .option('--access-log-sample-rate <rate>', 'fraction of requests to access-log, 0..1', fraction)
  .option('--log-level <level>', 'pino log level', 'info')
  .action(
    async (opts: {
      config: string;
      adminPort?: number;
      accessLog?: boolean;
      accessLogSampleRate?: number;
      logLevel: string;
    }) => {
      await runSidecar({
        configPath: opts.config,
        ...(opts.adminPort !== undefined && { adminPort: opts.adminPort }),
        accessLogSampleRate: opts.accessLogSampleRate ?? (opts.accessLog ? 1 : 0),
        logLevel: opts.logLevel,
      });
    },
  );

program
  .command('version')
  .description('print the version')
  .action(() => {
    process.stdout.write(`weft ${pkg.version}\n`);
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`weft: ${err.message}\n`);
  } else {
    process.stderr.write(`weft: ${(err as Error).stack ?? String(err)}\n`);
  }
  process.exit(1);
}
