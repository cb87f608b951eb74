/**
 * `DiscoveryClient`: the sidecar agent's end of the config stream (proto/weft/v1/discovery.proto).
 *
 * Lifecycle: `start()` first serves the cached snapshot (`cacheFile`) when there is a valid one,
 * then connects and keeps a stream open until `close()`, reconnecting after any failure. Each
 * stream opens with Hello (version = the version served now) and, when configured, Register (and
 * Deregister again after `deregister()`, so a reconnect keeps the endpoint draining), so whichever
 * control-plane replica the client reaches learns the proxy and its endpoint anew.
 *
 * Failover: `address` may name several control-plane replicas (an array, or `a:1,b:2`). Attempts
 * go round them in order, starting from the first; every failed or ended attempt moves on to the
 * next address. Backoff is per round, not per attempt: inside a round the next address is tried
 * at once, and only when a whole round has failed does the client wait a jittered exponential
 * backoff (100 ms doubling to 5 s, ±20 %) before the next one. A round is every address once; after
 * a stream was accepted (which also resets the backoff), the first round is the *other*
 * addresses, so the replica that just dropped the stream is retried only after a backoff. With one
 * address every retry thus waits the backoff; with several, a proxy whose replica dies moves to a
 * live one at once, while proxies facing a full outage still back off.
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

/**
 * One connection state change; `address` is the control-plane address of the attempt (on
 * `connecting`, `connected` and `disconnected`), `retryInMs` is set when a reconnect is scheduled.
 */
export interface StateChange {
  readonly state: ConnectionState;
  readonly reason?: string;
  readonly retryInMs?: number;
  readonly address?: string;
}

export interface DiscoveryClientOptions {
  /**
   * The control plane's discovery address, `host:port`, or several replicas' addresses (an array,
   * or one string with comma-separated addresses), tried in turn (see the module comment).
   */
  readonly address: string | readonly string[];
  readonly identity: HelloFields;
  /** Register this workload as an endpoint on every stream. */
  readonly register?: RegisterMessage;
  readonly proxy: ConfigTarget;
  /** Where the last ACKed snapshot is kept (JSON; see cache-file.ts). */
  readonly cacheFile: string;
  readonly logger?: Logger;
  /** Transport credentials (default: plain text). */
  readonly credentials?: ChannelCredentials;
  /** Reconnect backoff between rounds (default 100 ms doubling to 5000 ms, ±20 %). */
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
  readonly address: string;
  readonly client: DiscoveryClientStub;
  readonly call: DiscoveryClientCall;
  ended: boolean;
  readonly done: Promise<void>;
}

/**
 * The addresses named by `address` (an array, or a comma-separated string), trimmed, empty
 * entries dropped. Throws when none is left.
 */
export function parseAddresses(address: string | readonly string[]): string[] {
  const list = (typeof address === 'string' ? [address] : address)
    .flatMap((a) => a.split(','))
    .map((a) => a.trim())
    .filter((a) => a !== '');
  if (list.length === 0) throw new Error('no control-plane address given');
  return list;
}

/** A snapshot's config with all four lists present. */
export function configOf(snapshot: SnapshotMessage): ProxyConfig {
  return {
    listeners: snapshot.listeners ?? [],
    routes: snapshot.routes ?? [],
    clusters: snapshot.clusters ?? [],
    endpoints: snapshot.endpoints ?? [],
    ...(snapshot.trustBundle !== undefined && { trustBundle: snapshot.trustBundle }),
    ...(snapshot.rateLimitService !== undefined && { rateLimitService: snapshot.rateLimitService }),
    ...(snapshot.certificates !== undefined && { certificates: snapshot.certificates }),
  };
}

export class DiscoveryClient {
  readonly #options: DiscoveryClientOptions;
  readonly #addresses: readonly string[];
  readonly #log: Logger;
  readonly #backoff: Backoff;
  /** Index in `#addresses` of the next attempt. */
  #next = 0;
  /** Attempts left in the current round before the backoff applies. */
  #roundLeft: number;
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
    this.#addresses = parseAddresses(options.address);
    this.#roundLeft = this.#addresses.length;
    this.#log = (options.logger ?? pino({ level: 'silent' })).child({
      component: 'discovery-client',
      addresses: this.#addresses.join(','),
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

  /** The control-plane addresses, in the order they are tried. */
  get addresses(): readonly string[] {
    return this.#addresses;
  }

  /** The address of the stream open now (or being opened); undefined between attempts. */
  get address(): string | undefined {
    return this.#attempt?.address;
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
    const address = this.#addresses[this.#next] as string;
    this.#next = (this.#next + 1) % this.#addresses.length;
    this.#roundLeft--;
    this.#setState({ state: 'connecting', address });
    const { credentials } = this.#options;
    const client = createDiscoveryClient(
      address,
      credentials ?? grpcCredentials.createInsecure(),
      CHANNEL_OPTIONS,
    );
    const call = client.Stream();
    let finish: () => void = () => {};
    const attempt: Attempt = {
      address,
      client,
      call,
      ended: false,
      done: new Promise((r) => (finish = r)),
    };
    this.#attempt = attempt;
    call.on('metadata', () => {
      if (attempt.ended) return;
      // A server accepted: if this stream ends, the other addresses are tried at once.
      this.#backoff.reset();
      this.#roundLeft = this.#addresses.length - 1;
      this.#setState({ state: 'connected', address });
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
      let retryInMs = 0;
      if (this.#roundLeft <= 0) {
        retryInMs = this.#backoff.next();
        this.#roundLeft = this.#addresses.length;
      }
      const reason = `${status.code} ${status.details}`;
      this.#setState({ state: 'disconnected', address, reason, retryInMs });
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
