/**
 * Test harness: the real curl as the downstream client. Returns the final response's status,
 * headers (lower-case names, repeated fields in order) and body.
 */
import { execFile } from 'node:child_process';

export interface CurlResponse {
  readonly status: number;
  /** Every header line of the final response, in order: [name (lower-case), value]. */
  readonly headerLines: readonly (readonly [string, string])[];
  readonly body: string;
  readonly exitCode: number;
  readonly stderr: string;
  header(name: string): string | undefined;
  all(name: string): string[];
}

/** Runs `curl -sS -i <args>`; never rejects on HTTP errors (exitCode carries curl failures). */
export function curl(args: readonly string[], timeoutMs = 30_000): Promise<CurlResponse> {
  return new Promise((resolve) => {
    execFile(
      'curl',
      ['-sS', '-i', '--max-time', String(Math.ceil(timeoutMs / 1000)), ...args],
      { encoding: 'latin1', maxBuffer: 256 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const exitCode = err ? Number((err as { code?: number }).code ?? 1) : 0;
        // Skip interim (1xx) blocks; the final head is the last one before the body.
        let rest = stdout;
        let head = '';
        for (;;) {
          const end = rest.indexOf('\r\n\r\n');
          if (end === -1) {
            head = rest;
            rest = '';
            break;
          }
          head = rest.slice(0, end);
          rest = rest.slice(end + 4);
          if (!/^HTTP\/[\d.]+ 1\d\d/.test(head)) break;
        }
        const lines = head.split('\r\n');
        const status = Number(/^HTTP\/[\d.]+ (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
        const headerLines = lines.slice(1).map((l) => {
          const i = l.indexOf(':');
          return [l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim()] as const;
        });
        resolve({
          status,
          headerLines,
          body: rest,
          exitCode,
          stderr,
          header: (name) => headerLines.find(([n]) => n === name.toLowerCase())?.[1],
          all: (name) => headerLines.filter(([n]) => n === name.toLowerCase()).map(([, v]) => v),
        });
      },
    );
  });
}
