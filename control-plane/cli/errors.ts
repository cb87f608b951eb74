/**
 * CLI failures and exit codes. A command throws `CliError` to end with a message on stderr and a
 * chosen exit code; anything else is a bug and ends with its stack (exit 1, see main.ts).
 */

/** Exit codes of every `weft` verb. */
export const EXIT = {
  /** Success (for `diff`: no differences). */
  ok: 0,
  /** Failure: invalid documents, server error, NACKed or incomplete rollout, differences found. */
  failure: 1,
  /** Bad usage: unknown flag, missing argument, malformed value. */
  usage: 2,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A failure to report as `weft: <message>` (each of `details` on its own line) and exit with `exitCode`. */
export class CliError extends Error {
  readonly exitCode: ExitCode;
  readonly details: readonly string[];
  constructor(message: string, exitCode: ExitCode = EXIT.failure, details: readonly string[] = []) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
    this.details = details;
  }
}
