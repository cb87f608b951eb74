#!/usr/bin/env node
/**
 * `weft`: the one binary of the mesh, with a subcommand per role (commander parses arguments).
 *
 *   weft sidecar --config bootstrap.yaml | --control-plane HOST:PORT --service S --app-port P ...
 *   weft control-plane [--data-dir DIR] [--etcd URLS] ...
 *   weft gateway --config bootstrap.yaml | --control-plane HOST:PORT --gateway NAME ...
 *   weft version
 *   weft apply|get|delete|diff|validate|proxy-status|proxy-config ...   (admin verbs, commands/)
 *
 * Exit codes: 0 success, 1 invalid configuration or runtime failure, 2 bad usage.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { ConfigError } from '../../sidecar/proxy/config/errors.ts';
import { projectRoot } from '../../sidecar/proxy/config/root.ts';
import { registerGatewayCommand } from './commands/gateway.ts';
import { registerRunCommands } from './commands/run.ts';

const pkg = JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')) as { version: string };

const program = new Command('weft')
  .description('Weft service mesh')
  .version(pkg.version, '-v, --version')
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
  .showHelpAfterError();

registerRunCommands(program);
registerGatewayCommand(program);

program
  .command('version')
  .description('print the version')
  .action(() => {
    process.stdout.write(`weft ${pkg.version}\n`);
  });

// The long-running roles load only their own code: a sidecar never imports the admin verbs
// (and through them the resource schemas), which keeps its start-up and memory small.
const role = process.argv[2];
if (role !== 'sidecar' && role !== 'control-plane' && role !== 'gateway') {
  const { registerAdminCommands } = await import('./commands/index.ts');
  registerAdminCommands(program);
}

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
