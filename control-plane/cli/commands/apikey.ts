/**
 * `weft apikey create`: makes a new API key for the edge's SecurityPolicy `apiKeyAuth` (offline:
 * no server needed).
 *
 *   weft apikey create --client ID [--key-id ID] [--plan PLAN] [--scopes read,write]
 *                      [--ttl 2160h | --expires-at 2030-01-31T00:00:00Z] [-o table|json|yaml]
 *
 * The key (`wk_` + 256 random bits, base64url) is printed once, alone on stdout (so
 * `$(weft apikey create …)` captures it); the entry to paste into the policy's
 * `spec.apiKeyAuth.clients` goes to stderr. With `-o json|yaml` both go to stdout. Only the
 * key's SHA-256 is ever stored in a resource: a lost key cannot be shown again, only replaced.
 * Rotation: add a second key to the client (both work during the overlap), move the callers to
 * it, then give the old one an `expiresAt` or remove it.
 */
import { randomBytes } from 'node:crypto';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { stringify } from 'yaml';
import { hashApiKey } from '../../../gateway/filters/auth/apikey.ts';
import { parseDurationMs } from '../../resources/duration.ts';
import { type Format, printData } from '../output.ts';
import { outputOption, run } from './common.ts';

interface CreateOptions {
  readonly client: string;
  readonly keyId?: string;
  readonly plan?: string;
  readonly scopes?: string;
  readonly ttl?: string;
  readonly expiresAt?: string;
  readonly output: Format;
}

/** A new API key: `wk_` and 32 random bytes in base64url (43 characters). */
export function newApiKey(): string {
  return `wk_${randomBytes(32).toString('base64url')}`;
}

function ttlMs(value: string): number {
  try {
    return parseDurationMs(value);
  } catch {
    throw new InvalidArgumentError('must be a duration like 720h or 90m');
  }
}

function rfc3339(value: string): string {
  if (
    !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(value) ||
    Number.isNaN(Date.parse(value))
  ) {
    throw new InvalidArgumentError('must be an RFC 3339 time such as 2030-01-31T00:00:00Z');
  }
  return value;
}

export function registerApiKey(program: Command): void {
  const apikey = program.command('apikey').description('API keys for SecurityPolicy apiKeyAuth (offline)');
  outputOption(
    apikey
      .command('create')
      .description('make a new API key: prints it once, and the hashed entry for the SecurityPolicy')
      .requiredOption('--client <id>', 'the client the key belongs to')
      .option('--key-id <id>', 'the key id (a metric label); default k-<random>')
      .option('--plan <plan>', 'the client plan label (forwarded as x-weft-plan)')
      .option('--scopes <list>', 'comma-separated scopes of this key, e.g. read,write')
      .addOption(
        new Option('--ttl <duration>', 'expire after this long, e.g. 2160h')
          .argParser(ttlMs)
          .conflicts('expiresAt'),
      )
      .addOption(new Option('--expires-at <time>', 'expire at this RFC 3339 time').argParser(rfc3339)),
  ).action(
    run(async (opts: CreateOptions & { ttl?: unknown }) => {
      const key = newApiKey();
      const ttl = opts.ttl as number | undefined;
      const expiresAt =
        opts.expiresAt ??
        (ttl === undefined ? undefined : new Date(Date.now() + ttl).toISOString().replace(/\.\d+Z$/, 'Z'));
      const scopes = (opts.scopes ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
      const entry = {
        id: opts.keyId ?? `k-${randomBytes(4).toString('hex')}`,
        sha256: hashApiKey(key),
        ...(expiresAt !== undefined && { expiresAt }),
        ...(scopes.length > 0 && { scopes }),
      };
      const client = { id: opts.client, ...(opts.plan !== undefined && { plan: opts.plan }), keys: [entry] };
      if (opts.output !== 'table') {
        printData({ key, client }, opts.output);
        return;
      }
      process.stdout.write(`${key}\n`);
      process.stderr.write(
        `API key for client ${opts.client}, key ${entry.id}: shown once above, only its SHA-256 is kept.\n` +
          'Add to the SecurityPolicy spec.apiKeyAuth.clients (or this key to the client already there):\n' +
          stringify([client])
            .split('\n')
            .map((l) => (l === '' ? l : `  ${l}`))
            .join('\n'),
      );
    }),
  );
}
