/**
 * What every admin verb shares: the connection options (`--server`, `--token`, `--data-dir`),
 * `-o` output format, `-f` inputs, duration values, and the action wrapper that turns a
 * `CliError` into its message on stderr and its exit code.
 *
 * Token precedence: `--token`, then `WEFT_TOKEN`, then `<data-dir>/admin-token` (data dir
 * default `.weft`, i.e. `./.weft/admin-token`); none → requests go without a token (and get 401).
 */

import { join } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { readToken, TOKEN_FILE } from '../../api/tokenFile.ts';
import { AdminClient } from '../client.ts';
import { CliError, EXIT } from '../errors.ts';
import { FORMATS, type Format } from '../output.ts';

export const DEFAULT_SERVER = 'http://127.0.0.1:15080';

/** Options every verb that talks to the server accepts. */
export interface ConnectionOptions {
  readonly server: string;
  readonly token?: string;
  readonly dataDir: string;
}

/** Adds `--server`, `--token` and `--data-dir` to `cmd`. */
export function connectionOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--server <url>', 'admin API URL').env('WEFT_SERVER').default(DEFAULT_SERVER))
    .addOption(new Option('--token <token>', 'admin API bearer token').env('WEFT_TOKEN'))
    .addOption(
      new Option('--data-dir <dir>', 'control-plane data directory holding admin-token').default('.weft'),
    );
}

/** Adds `-o, --output <format>` (table | json | yaml; default table). */
export function outputOption(cmd: Command, formats: readonly Format[] = FORMATS): Command {
  return cmd.addOption(
    new Option('-o, --output <format>', 'output format').choices(formats as Format[]).default('table'),
  );
}

/** A client for the server named by `opts`, with the token resolved as the module describes. */
export async function clientFor(opts: ConnectionOptions): Promise<AdminClient> {
  let token = opts.token;
  if (!token) {
    token = await readToken(join(opts.dataDir, TOKEN_FILE)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw new CliError(`cannot read the admin token: ${err.message}`);
    });
  }
  return new AdminClient({ server: opts.server, token });
}

/** Parses a duration flag: `500ms`, `30s`, `2m` or a bare number of seconds → milliseconds. */
export function durationMs(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError('must be a duration like 500ms, 30s or 2m');
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return Math.round(unit === 'ms' ? n : unit === 's' ? n * 1000 : n * 60_000);
}

/** Collects repeated `-f` values. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/**
 * Wraps a verb's action: a thrown `CliError` prints `weft: <message>` and its details on stderr
 * and sets the exit code; other errors propagate (main.ts reports them, exit 1).
 */
export function run<A extends unknown[]>(
  action: (...args: A) => Promise<void>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await action(...args);
    } catch (err) {
      if (!(err instanceof CliError)) throw err;
      process.stderr.write(`weft: ${err.message}\n${err.details.map((d) => `  ${d}\n`).join('')}`);
      process.exitCode = err.exitCode;
    }
  };
}

/** A usage error (exit 2). */
export function usage(message: string): CliError {
  return new CliError(message, EXIT.usage);
}
