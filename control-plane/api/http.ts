/**
 * Small HTTP helpers for the admin API: JSON replies, bounded body reading and `ApiError`, the
 * one error type a handler throws to answer with a status and a JSON `{ error }` or `{ errors }`.
 *
 * Invariants: every reply is JSON (`application/json; charset=utf-8`) with a trailing newline;
 * request bodies are read as UTF-8 text and capped at `MAX_BODY_BYTES`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Largest request body accepted (bytes); larger bodies get 413. */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

/**
 * A handled failure: the server answers `status` with `{ error: message }`, or with
 * `{ errors }` when a list is given (validation failures, 422).
 */
export class ApiError extends Error {
  readonly status: number;
  readonly errors: readonly string[] | undefined;
  readonly headers: Readonly<Record<string, string>>;
  constructor(
    status: number,
    message: string,
    options: { errors?: readonly string[]; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.errors = options.errors;
    this.headers = options.headers ?? {};
  }

  /** The JSON body of the reply. */
  body(): { error: string } | { error: string; errors: readonly string[] } {
    return this.errors ? { error: this.message, errors: this.errors } : { error: this.message };
  }
}

/** Writes `body` as pretty JSON with `status` and any extra headers. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): void {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

/**
 * Reads the whole request body as UTF-8 text.
 * Throws `ApiError(413)` past `MAX_BODY_BYTES`, and rejects when the client aborts.
 */
export async function readText(req: IncomingMessage): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) throw new ApiError(413, `request body over ${MAX_BODY_BYTES} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new ApiError(413, `request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
