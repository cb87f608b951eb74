/**
 * Helpers for the routing integration tests (test/integration/routing-*.test.ts and friends):
 * named upstreams that say who answered, a bootstrap fragment wiring each upstream to a cluster of
 * the same name, many requests from one curl process, and event waits with a deadline.
 */
import { execFile } from 'node:child_process';
import type { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Bootstrap } from '../../sidecar/proxy/config/types.ts';
import type { CurlResponse } from './curl.ts';
import { startUpstream, type Upstream } from './upstream.ts';

/** What a named upstream echoes as JSON. */
export interface Echo {
  readonly name: string;
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string | string[] | undefined>;
}

/**
 * An upstream that answers 200 with `x-upstream: <name>` and a JSON echo of name, method, url
 * and headers. `extra` may set more response headers (called before the body is written).
 */
export function namedUpstream(
  name: string,
  extra?: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<Upstream> {
  return startUpstream((req, res) => {
    req.resume();
    req.on('end', () => {
      const body = JSON.stringify({ name, method: req.method, url: req.url, headers: req.headers });
      res.setHeader('x-upstream', name);
      res.setHeader('content-type', 'application/json');
      extra?.(req, res);
      res.end(body);
    });
  });
}

/** The echo in a response from a named upstream (throws with the response when it is not one). */
export function echoOf(res: CurlResponse): Echo {
  try {
    return JSON.parse(res.body) as Echo;
  } catch {
    throw new Error(`not an upstream echo: ${res.status} ${JSON.stringify(res.headerLines)} ${res.body}`);
  }
}

/** Clusters and endpoints with one cluster per upstream, named by the record key. */
export function clustersFor(upstreams: Readonly<Record<string, Upstream>>): {
  clusters: NonNullable<Bootstrap['clusters']>;
  endpoints: NonNullable<Bootstrap['endpoints']>;
} {
  const names = Object.keys(upstreams);
  return {
    clusters: names.map((name) => ({ name })),
    endpoints: names.map((name) => ({
      clusterName: name,
      endpoints: [{ address: '127.0.0.1', port: (upstreams[name] as Upstream).port }],
    })),
  };
}

/**
 * Sends `count` requests to `url` from one curl process (sequential, one keep-alive connection)
 * and returns one line per request, formatted by `writeOut` (curl `-w` syntax, e.g.
 * `'%{http_code} %header{x-upstream}'`). Bodies are discarded. `args` apply to every request.
 */
export function curlMany(
  url: string,
  count: number,
  writeOut: string,
  args: readonly string[] = [],
): Promise<string[]> {
  const perUrl: string[] = [];
  for (let i = 0; i < count; i++) perUrl.push(url, '-o', '/dev/null');
  return new Promise((resolve, reject) => {
    execFile(
      'curl',
      ['-sS', '--max-time', '30', '-w', `${writeOut}\\n`, ...args, ...perUrl],
      { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) {
          reject(new Error(`curl failed: ${err.message}\n${stderr}`));
          return;
        }
        resolve(stdout.split('\n').filter((line) => line !== ''));
      },
    );
  });
}

/** Counts equal strings. */
export function tally(values: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return counts;
}

/**
 * Resolves with the event's arguments when `emitter` emits `event`, or rejects after
 * `timeoutMs` naming `what`. Attach it before the action that causes the event.
 */
export function eventWithin<T extends unknown[]>(
  emitter: EventEmitter,
  event: string,
  timeoutMs: number,
  what: string,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onEvent = (...args: unknown[]) => {
      clearTimeout(timer);
      resolve(args as T);
    };
    const timer = setTimeout(() => {
      emitter.off(event, onEvent);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    emitter.once(event, onEvent);
  });
}

/** Resolves with `promise`, or rejects after `timeoutMs` naming `what`. */
export function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)),
      timeoutMs,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
