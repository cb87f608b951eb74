/**
 * The CLI's client for the control plane's admin API (undici `request`, JSON bodies, bearer token).
 *
 * Every method resolves with the reply's JSON body on 2xx and throws `CliError` otherwise: the
 * server's `error` as the message and its `errors` (validation failures) as details; a 401 adds
 * how to pass the token; an unreachable server names the URL.
 */
import { request } from 'undici';
import type {
  CaStatus,
  CreatedToken,
  TokenCreateRequest,
  TokenInfo,
  TokenList,
  TrustBundle,
} from '../api/ca-routes.ts';
import type {
  ApplyResponse,
  DeleteResponse,
  DiffResponse,
  ErrorBody,
  ProxyList,
  ResourceList,
  RolloutReceipt,
} from '../api/types.ts';
import type { Resource } from '../resources/types.ts';
import type { ProxySnapshot } from '../translate/types.ts';
import { CliError } from './errors.ts';

export interface ClientOptions {
  /** Base URL, e.g. `http://127.0.0.1:15080`. */
  readonly server: string;
  readonly token: string | undefined;
}

type Method = 'GET' | 'POST' | 'DELETE';

export class AdminClient {
  readonly #base: string;
  readonly #token: string | undefined;

  constructor(options: ClientOptions) {
    this.#base = options.server.replace(/\/+$/, '');
    this.#token = options.token;
  }

  /** Applies a YAML stream; `dryRun` computes the result without writing. */
  apply(yaml: string, dryRun: boolean): Promise<ApplyResponse> {
    return this.#call('POST', `/v1/apply${dryRun ? '?dryRun=true' : ''}`, { body: yaml });
  }

  /** Deletes the resources named in a YAML stream. */
  deleteDocuments(yaml: string): Promise<DeleteResponse> {
    return this.#call('POST', '/v1/delete', { body: yaml });
  }

  /** Deletes one resource; throws CliError on 404. */
  deleteOne(kind: string, namespace: string, name: string): Promise<{ revision: number }> {
    return this.#call('DELETE', `/v1/resources/${path(kind, namespace, name)}`);
  }

  diff(yaml: string): Promise<DiffResponse> {
    return this.#call('POST', '/v1/diff', { body: yaml });
  }

  list(kind: string, namespace: string | undefined): Promise<ResourceList> {
    const q = new URLSearchParams({ kind, ...(namespace !== undefined && { namespace }) });
    return this.#call('GET', `/v1/resources?${q}`);
  }

  get(kind: string, namespace: string, name: string): Promise<Resource> {
    return this.#call('GET', `/v1/resources/${path(kind, namespace, name)}`);
  }

  proxies(): Promise<ProxyList> {
    return this.#call('GET', '/v1/proxies');
  }

  proxyConfig(proxyId: string): Promise<ProxySnapshot> {
    return this.#call('GET', `/v1/proxies/${encodeURIComponent(proxyId)}/config`);
  }

  /** Waits on the server up to `timeoutMs` for every connected proxy to take `revision`. */
  rollout(revision: number, timeoutMs: number): Promise<RolloutReceipt> {
    const q = new URLSearchParams({ revision: String(revision), timeoutMs: String(timeoutMs) });
    return this.#call('GET', `/v1/rollout?${q}`, { waitMs: timeoutMs });
  }

  /** Mints a join token; the reply holds the secret, shown once. */
  createToken(request: TokenCreateRequest): Promise<CreatedToken> {
    return this.#call('POST', '/v1/tokens', { body: JSON.stringify(request), json: true });
  }

  tokens(): Promise<TokenList> {
    return this.#call('GET', '/v1/tokens');
  }

  /** Revokes a join token; throws CliError on 404. */
  revokeToken(id: string): Promise<TokenInfo> {
    return this.#call('DELETE', `/v1/tokens/${encodeURIComponent(id)}`);
  }

  caStatus(): Promise<CaStatus> {
    return this.#call('GET', '/v1/ca');
  }

  trustBundle(): Promise<TrustBundle> {
    return this.#call('GET', '/v1/ca/bundle');
  }

  /**
   * Rotates the root; `overlap` and `propagation` are GEP-2257 durations (defaults: the
   * certificate TTL, and 30 s before the new root issues).
   */
  rotateCa(overlap: string | undefined, propagation?: string): Promise<CaStatus> {
    return this.#call('POST', '/v1/ca/rotate', {
      body: JSON.stringify({
        ...(overlap !== undefined && { overlap }),
        ...(propagation !== undefined && { propagation }),
      }),
      json: true,
    });
  }

  async #call<T>(
    method: Method,
    pathAndQuery: string,
    options: { body?: string; json?: boolean; waitMs?: number } = {},
  ): Promise<T> {
    const url = `${this.#base}${pathAndQuery}`;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.#token) headers.authorization = `Bearer ${this.#token}`;
    if (options.body !== undefined) {
      headers['content-type'] = options.json ? 'application/json' : 'application/yaml; charset=utf-8';
    }
    // Long polls (rollout) must not hit undici's own 300 s header/body timeouts first.
    const timeoutMs = (options.waitMs ?? 0) + 30_000;
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(url, {
        method,
        headers,
        ...(options.body !== undefined && { body: options.body }),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
    } catch (err) {
      throw new CliError(`cannot reach the control plane at ${this.#base}: ${(err as Error).message}`);
    }
    const text = await res.body.text();
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      throw new CliError(
        `${method} ${pathAndQuery}: HTTP ${res.statusCode}, not JSON: ${text.slice(0, 200)}`,
      );
    }
    if (res.statusCode >= 200 && res.statusCode < 300) return body as T;
    const err = (body ?? {}) as Partial<ErrorBody>;
    const message = err.error ?? `HTTP ${res.statusCode}`;
    if (res.statusCode === 401) {
      throw new CliError(
        `${message} (pass --token, set WEFT_TOKEN, or use --data-dir with the admin-token file)`,
      );
    }
    throw new CliError(message, 1, err.errors ?? []);
  }
}

function path(kind: string, namespace: string, name: string): string {
  return [kind, namespace, name].map(encodeURIComponent).join('/');
}
