/**
 * `DiscoveryClient`: the sidecar agent's end of the config stream (proto/weft/v1/discovery.proto).
 *
 * Lifecycle: `start()` first serves the cached snapshot (`cacheFile`) when there is a valid one,
 * then connects and keeps a stream open until `close()`, reconnecting after any failure with
 * jittered exponential backoff (100 ms doubling to 5 s, ±20 %; reset once the server accepts a
 * stream). Each stream opens with Hello (version = the version served now) and, when configured,
 * Register (and Deregister again after `deregister()`, so a reconnect keeps the endpoint draining).
 *
 * Snapshots: `await proxy.apply(config, version)`; on success the snapshot is written atomically
 * to `cacheFile` and ACKed; on any error (ConfigError or other) it is NACKed with the error
 * message and the proxy keeps serving what it had. Snapshots are applied one at a time; when
 * several arrive during an apply only the newest is applied (the server only awaits the latest
 * nonce). `onFirstConfig` resolves with the version of the first config applied, from the
 * cache or the stream. Connection state changes are logged and reported to `onStateChange`.
 */
import { type ChannelCredentials, credentials as grpcCredentials, type StatusObject } from '@grpc/grpc-js';
import pino, { type Logger } from 'pino';
import {
  type ControlMessage,
  createDiscoveryClient,
  type DiscoveryClientCall,
  type DiscoveryClientStub,
  type HelloMessage,
  type ProxyMessage,
  type RegisterMessage,
  type SnapshotMessage,
} from '../../control-plane/discovery/proto.ts';
import type { ProxyConfig } from '../proxy/config/model.ts';
import { Backoff, type BackoffOptions } from './backoff.ts';
import { loadCached, writeCached } from './cache-file.ts';

/** What the client drives: the proxy core (or anything with its `apply`). */
export interface ConfigTarget {
  /** Applies `config` as `version`; rejects (e.g. with ConfigError) when it is not applied. */
  apply(config: ProxyConfig, version: string): Promise<void>;
}

/** The Hello fields the client sends; `version` is filled in with the version served. */
export type HelloFields = Omit<HelloMessage, 'version'>;

export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'disconnected' | 'closed';

/** One connection state change; `retryInMs` is set when a reconnect is scheduled. */
export interface StateChange {
  readonly state: ConnectionState;
  readonly reason?: string;
  readonly retryInMs?: number;
}

export interface DiscoveryClientOptions {
  /** The control plane's discovery address, `host:port`. */
  readonly address: string;
  readonly identity: HelloFields;
  /** Register this workload as an endpoint on every stream. */
  readonly register?: RegisterMessage;
  readonly proxy: ConfigTarget;
  /** Where the last ACKed snapshot is kept (JSON; see cache-file.ts). */
  readonly cacheFile: string;
  readonly logger?: Logger;
  /** Transport credentials (default: plain text). */
  readonly credentials?: ChannelCredentials;
  /** Reconnect backoff (default 100 ms doubling to 5000 ms, ±20 %). */
  readonly backoff?: Partial<BackoffOptions>;
  readonly onStateChange?: (change: StateChange) => void;
}

/** How long `close` waits for the server to end the stream after our half-close, milliseconds. */
const CLOSE_GRACE_MS = 1000;

const CHANNEL_OPTIONS = {
  'grpc.keepalive_time_ms': 20_000,
  'grpc.keepalive_timeout_ms': 10_000,
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
};

/** One stream attempt. */
interface Attempt {
  readonly client: DiscoveryClientStub;
  readonly call: DiscoveryClientCall;
  ended: boolean;
  readonly done: Promise<void>;
}

/** A snapshot's config with all four lists present. */
export function configOf(snapshot: SnapshotMessage): ProxyConfig {
  return {
    listeners: snapshot.listeners ?? [],
    routes: snapshot.routes ?? [],
    clusters: snapshot.clusters ?? [],
    endpoints: snapshot.endpoints ?? [],
  };
}

export class DiscoveryClient {
  readonly #options: DiscoveryClientOptions;
  readonly #log: Logger;
  readonly #backoff: Backoff;
  readonly #firstConfig: Promise<string>;
  #resolveFirst: (version: string) => void = () => {};
  #rejectFirst: (err: Error) => void = () => {};
  #hasConfig = false;
  #started = false;
  #state: ConnectionState = 'idle';
  #attempt: Attempt | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #served = '';
  #draining = false;
  #pending: { readonly attempt: Attempt; readonly snapshot: SnapshotMessage } | undefined;
  #applying: Promise<void> | undefined;

  constructor(options: DiscoveryClientOptions) {
    this.#options = options;
    this.#log = (options.logger ?? pino({ level: 'silent' })).child({
      component: 'discovery-client',
      address: options.address,
    });
    this.#backoff = new Backoff(options.backoff);
    this.#firstConfig = new Promise<string>((resolve, reject) => {
      this.#resolveFirst = resolve;
      this.#rejectFirst = reject;
    });
    this.#firstConfig.catch(() => {});
  }

  /**
   * Resolves with the version of the first config applied (from the cache or the stream);
   * rejects if the client is closed before that.
   */
  get onFirstConfig(): Promise<string> {
    return this.#firstConfig;
  }

  /** The version served now ('' before the first config). */
  get version(): string {
    return this.#served;
  }

  get state(): ConnectionState {
    return this.#state;
  }

  get #closed(): boolean {
    return this.#state === 'closed';
  }

  /**
   * Serves the cached snapshot if there is a valid one (a missing, corrupt or rejected cache is
   * logged and skipped), then starts connecting. Resolves once the cache step is done; the
   * connection proceeds in the background. Throws when called twice.
   */
  async start(): Promise<void> {
    if (this.#started) throw new Error('DiscoveryClient.start called twice');
    this.#started = true;
    try {
      const cached = await loadCached(this.#options.cacheFile);
      if (cached !== undefined) {
        await this.#options.proxy.apply(cached.config, cached.version);
        this.#applied(cached.version);
        this.#log.info({ version: cached.version }, 'serving the cached config');
      }
    } catch (err) {
      this.#log.warn({ err, cacheFile: this.#options.cacheFile }, 'not serving the cached config');
    }
    if (!this.#closed) this.#connect();
  }

  /**
   * Tells the control plane to drain this endpoint (Deregister) and resolves once the message
   * was written to the transport, or after `timeoutMs` (default 1000) when it could not be.
   * Later reconnects repeat the Deregister.
   */
  async deregister(timeoutMs = 1000): Promise<void> {
    this.#draining = true;
    const attempt = this.#attempt;
    if (attempt === undefined || attempt.ended) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.#send(attempt, { deregister: {} }, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /**
   * Stops reconnecting and ends the stream (half-close, then cancel after a short grace), which
   * makes the control plane revoke this proxy's lease. Waits for an apply in progress.
   * `onFirstConfig` rejects if no config was applied. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#setState({ state: 'closed' });
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#pending = undefined;
    if (!this.#hasConfig) this.#rejectFirst(new Error('discovery client closed before the first config'));
    const attempt = this.#attempt;
    if (attempt !== undefined && !attempt.ended) {
      attempt.call.end();
      const timer = setTimeout(() => attempt.call.cancel(), CLOSE_GRACE_MS);
      await attempt.done;
      clearTimeout(timer);
    }
    await this.#applying;
  }

  #setState(change: StateChange): void {
    if (this.#state === 'closed' && change.state !== 'closed') return;
    this.#state = change.state;
    const level = change.state === 'disconnected' ? 'warn' : change.state === 'connecting' ? 'debug' : 'info';
    this.#log[level]({ ...change }, `discovery ${change.state}`);
    this.#options.onStateChange?.(change);
  }

  #connect(): void {
    this.#retryTimer = undefined;
    if (this.#state === 'closed') return;
    this.#setState({ state: 'connecting' });
    const { address, credentials } = this.#options;
    const client = createDiscoveryClient(
      address,
      credentials ?? grpcCredentials.createInsecure(),
      CHANNEL_OPTIONS,
    );
    const call = client.Stream();
    let finish: () => void = () => {};
    const attempt: Attempt = { client, call, ended: false, done: new Promise((r) => (finish = r)) };
    this.#attempt = attempt;
    call.on('metadata', () => {
      if (attempt.ended) return;
      this.#backoff.reset();
      this.#setState({ state: 'connected' });
    });
    call.on('data', (message: ControlMessage) => {
      if (message.snapshot !== undefined) this.#onSnapshot(attempt, message.snapshot);
    });
    call.on('error', () => {}); // the outcome is handled on 'status'
    call.on('status', (status: StatusObject) => {
      attempt.ended = true;
      client.close();
      if (this.#attempt === attempt) this.#attempt = undefined;
      finish();
      if (this.#state === 'closed') return;
      const retryInMs = this.#backoff.next();
      this.#setState({ state: 'disconnected', reason: `${status.code} ${status.details}`, retryInMs });
      this.#retryTimer = setTimeout(() => this.#connect(), retryInMs);
    });
    this.#send(attempt, { hello: { ...this.#options.identity, version: this.#served } });
    if (this.#options.register !== undefined) this.#send(attempt, { register: this.#options.register });
    if (this.#draining) this.#send(attempt, { deregister: {} });
  }

  #send(attempt: Attempt, message: ProxyMessage, written?: () => void): void {
    if (attempt.ended) {
      written?.();
      return;
    }
    attempt.call.write(message, () => written?.());
  }

  #onSnapshot(attempt: Attempt, snapshot: SnapshotMessage): void {
    this.#pending = { attempt, snapshot };
    if (this.#applying === undefined) this.#applying = this.#drain();
  }

  async #drain(): Promise<void> {
    while (this.#pending !== undefined) {
      const { attempt, snapshot } = this.#pending;
      this.#pending = undefined;
      await this.#applyOne(attempt, snapshot);
    }
    this.#applying = undefined;
  }

  async #applyOne(attempt: Attempt, snapshot: SnapshotMessage): Promise<void> {
    const version = snapshot.version ?? '';
    const nonce = snapshot.nonce ?? '';
    const config = configOf(snapshot);
    try {
      await this.#options.proxy.apply(config, version);
    } catch (err) {
      const errorDetail = err instanceof Error ? err.message : String(err);
      this.#log.warn({ version, errorDetail }, 'snapshot rejected; keeping the last good config');
      this.#send(attempt, { nack: { version, nonce, errorDetail } });
      return;
    }
    try {
      await writeCached(this.#options.cacheFile, { version, config });
    } catch (err) {
      this.#log.error({ err, cacheFile: this.#options.cacheFile }, 'cannot write the config cache');
    }
    this.#applied(version);
    this.#log.info({ version }, 'snapshot applied');
    this.#send(attempt, { ack: { version, nonce } });
  }

  #applied(version: string): void {
    this.#served = version;
    if (!this.#hasConfig) {
      this.#hasConfig = true;
      this.#resolveFirst(version);
    }
  }
}
