/**
 * `ProxyConnection`: the server side of one discovery stream (one proxy), the protocol of
 * proto/weft/v1/discovery.proto:
 *
 *   proxy                      control plane
 *   Hello  ───────────────────▶ identity checked; lease granted; status written
 *          ◀─────────────────── Snapshot {version = store revision, nonce = random}
 *   Ack / Nack ───────────────▶ recorded in the SnapshotCache and the status record
 *   Register / Deregister ────▶ endpoint written under the stream's lease (draining on Deregister)
 *          ◀─────────────────── Snapshot … whenever a recomputation changes this proxy's config
 *   end / cancel / error ─────▶ lease revoked: endpoint and status records disappear
 *
 * Invariants:
 * - The first message must be a Hello; anything else (or a second Hello, or an invalid Hello or
 *   Register) ends the stream with INVALID_ARGUMENT and a message naming the field.
 * - Incoming messages are handled one at a time, in order (a task queue), so a Register is
 *   written before the Deregister that follows it. Every store write carries the stream's lease;
 *   when the store loses that lease, the stream ends (UNAVAILABLE) and the proxy registers anew.
 * - After a NACK nothing is resent until the config changes (the cache compares config hashes).
 * - `close` is idempotent; once closed, no store write or send starts, and the lease is revoked
 *   after the queued work has finished.
 */
import { randomUUID } from 'node:crypto';
import { status as GrpcStatus, Metadata } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { endpointKey, proxyKey } from '../store/keys.ts';
import type { Lease, Store, TxnOp } from '../store/types.ts';
import type { EndpointRegistration, ProxyIdentity, ProxySnapshot } from '../translate/types.ts';
import { InvalidMessageError, identityOf, registrationOf } from './identity.ts';
import type { DiscoveryMetrics } from './metrics.ts';
import type {
  AckMessage,
  DiscoveryServerCall,
  HelloMessage,
  NackMessage,
  ProxyMessage,
  RegisterMessage,
} from './proto.ts';
import type { SnapshotCache } from './snapshot-cache.ts';
import type { ProxyStatus, ProxyStatusRecord } from './status.ts';

/** What a connection needs from its server. */
export interface ConnectionContext {
  readonly store: Store;
  readonly cache: SnapshotCache;
  readonly snapshotFor: (identity: ProxyIdentity) => ProxySnapshot | undefined;
  readonly replicaId: string;
  readonly leaseTtlSeconds: number;
  /**
   * True during the control plane's reconnect grace (server.ts): a proxy that already runs a
   * config (its Hello names a version) gets no snapshot yet, so that it never receives a mesh
   * whose other proxies have not re-registered their endpoints after a control-plane restart.
   */
  readonly inReconnectGrace?: () => boolean;
  readonly log: Logger;
  readonly metrics: DiscoveryMetrics;
  /** Makes `conn` the stream of its proxy id, closing (and awaiting) an older stream of that id. */
  attach(conn: ProxyConnection): Promise<void>;
  /** Forgets `conn`, and its proxy's cache entry if it is still the stream of its proxy id. */
  detach(conn: ProxyConnection): void;
}

type State = 'awaiting-hello' | 'open' | 'closed';

function kindOf(message: ProxyMessage): string {
  return Object.keys(message).join(',') || 'an empty message';
}

export class ProxyConnection {
  readonly #call: DiscoveryServerCall;
  readonly #ctx: ConnectionContext;
  #log: Logger;
  #state: State = 'awaiting-hello';
  #queue: Promise<void> = Promise.resolve();
  #closed: Promise<void> | undefined;
  #identity: ProxyIdentity | undefined;
  #lease: Lease | undefined;
  #registration: EndpointRegistration | undefined;
  #connectedAt = '';
  #lastStatusJson = '';
  /** The version the proxy said it serves in its Hello ('' when none). */
  #helloVersion = '';

  constructor(call: DiscoveryServerCall, ctx: ConnectionContext) {
    this.#call = call;
    this.#ctx = ctx;
    this.#log = ctx.log.child({ peer: call.getPeer() });
    call.on('data', (message: ProxyMessage) => this.#enqueue(() => this.#onMessage(message)));
    call.on('end', () => void this.close('proxy ended the stream'));
    call.on('cancelled', () => void this.close('stream cancelled'));
    call.on('error', (err: Error) => void this.close(`stream error: ${err.message}`));
  }

  /** The proxy's identity, once its Hello was accepted. */
  get identity(): ProxyIdentity | undefined {
    return this.#identity;
  }

  /** True once the Hello was handled and until the stream closes. */
  get open(): boolean {
    return this.#state === 'open';
  }

  /** True once `close` was called. */
  get closed(): boolean {
    return this.#state === 'closed';
  }

  /**
   * Recomputes this proxy's snapshot (mesh state at store `revision`) and pushes it when its
   * config changed; when unchanged, records that the proxy is in sync with `revision`.
   * A no-op unless the stream is open.
   */
  refresh(revision: number): void {
    const id = this.#identity;
    if (this.#state !== 'open' || id === undefined) return;
    // A proxy serving its last config keeps it through the reconnect grace (see ConnectionContext).
    if (this.#helloVersion !== '' && this.#ctx.inReconnectGrace?.() === true) return;
    let snapshot: ProxySnapshot | undefined;
    try {
      snapshot = this.#ctx.snapshotFor(id);
    } catch (err) {
      this.#log.error({ err }, 'cannot compute the snapshot; keeping the last one');
      return;
    }
    const result = this.#ctx.cache.update(id.proxyId, snapshot);
    if (result === 'changed') this.#push();
    else if (result === 'unchanged' && this.#ctx.cache.markUnchanged(id.proxyId, revision)) {
      this.#enqueue(() => this.#putStatus());
    }
  }

  /** This proxy's status, or undefined before its Hello was handled. */
  status(): ProxyStatus | undefined {
    const record = this.#record();
    const entry = this.#identity && this.#ctx.cache.get(this.#identity.proxyId);
    if (record === undefined || entry === undefined) return undefined;
    return {
      ...record,
      computedVersion: entry.snapshot?.version ?? '',
      pendingNonce: entry.outstanding ? (entry.sent?.nonce ?? '') : '',
    };
  }

  /**
   * Ends the stream (with `failure` as its gRPC status, else OK), forgets the proxy and revokes
   * the stream's lease once queued work has finished. Idempotent; resolves when the lease is gone.
   */
  close(reason: string, failure?: { readonly code: GrpcStatus; readonly details: string }): Promise<void> {
    if (this.#closed !== undefined) return this.#closed;
    const wasOpen = this.#state === 'open';
    this.#state = 'closed';
    this.#closed = this.#release();
    this.#ctx.detach(this);
    if (failure !== undefined) {
      this.#call.emit('error', Object.assign(new Error(failure.details), failure));
    } else if (!this.#call.cancelled && this.#call.writable) {
      this.#call.end();
    }
    if (wasOpen) this.#log.info({ reason }, 'proxy disconnected');
    else this.#log.debug({ reason }, 'stream closed before Hello was handled');
    return this.#closed;
  }

  async #release(): Promise<void> {
    await this.#queue;
    const lease = this.#lease;
    if (lease === undefined) return;
    try {
      await lease.revoke();
    } catch (err) {
      this.#log.error({ err, lease: lease.id }, 'cannot revoke the stream lease');
    }
  }

  #fail(code: GrpcStatus, details: string): void {
    this.#log.warn({ code: GrpcStatus[code], details }, 'ending the stream');
    void this.close(details, { code, details });
  }

  #enqueue(task: () => Promise<void>): void {
    this.#queue = this.#queue.then(task).catch((err: unknown) => {
      this.#log.error({ err }, 'discovery stream task failed');
    });
  }

  async #onMessage(message: ProxyMessage): Promise<void> {
    if (this.#state === 'closed') return;
    if (this.#state === 'awaiting-hello') {
      if (message.hello === undefined) {
        this.#fail(GrpcStatus.INVALID_ARGUMENT, `the first message must be a Hello, got ${kindOf(message)}`);
        return;
      }
      await this.#hello(message.hello);
    } else if (message.hello !== undefined) {
      this.#fail(GrpcStatus.INVALID_ARGUMENT, 'Hello sent twice on one stream');
    } else if (message.ack !== undefined) {
      await this.#ack(message.ack);
    } else if (message.nack !== undefined) {
      await this.#nack(message.nack);
    } else if (message.register !== undefined) {
      await this.#register(message.register);
    } else if (message.deregister !== undefined) {
      await this.#deregister();
    } else {
      this.#log.warn({ kind: kindOf(message) }, 'ignoring an unknown message');
    }
  }

  async #hello(hello: HelloMessage): Promise<void> {
    let identity: ProxyIdentity;
    try {
      identity = identityOf(hello);
    } catch (err) {
      if (!(err instanceof InvalidMessageError)) throw err;
      this.#fail(GrpcStatus.INVALID_ARGUMENT, err.message);
      return;
    }
    this.#identity = identity;
    this.#log = this.#log.child({ proxyId: identity.proxyId });
    await this.#ctx.attach(this);
    if (this.closed) return;
    try {
      this.#lease = await this.#ctx.store.grantLease(this.#ctx.leaseTtlSeconds);
    } catch (err) {
      this.#fail(GrpcStatus.UNAVAILABLE, `cannot grant a lease: ${(err as Error).message}`);
      return;
    }
    if (this.closed) return;
    // A lease the store lost (etcd: keepalives failed for a TTL) took the endpoint and status
    // with it: end the stream, so the proxy reconnects and registers again under a new lease.
    this.#lease.onLost?.((err) => this.#fail(GrpcStatus.UNAVAILABLE, `stream lease lost: ${err.message}`));
    this.#state = 'open';
    this.#connectedAt = new Date().toISOString();
    this.#helloVersion = hello.version ?? '';
    this.#ctx.cache.open(identity.proxyId, hello.version ?? '');
    this.#call.sendMetadata(new Metadata());
    this.#log.info({ identity, servingVersion: hello.version ?? '' }, 'proxy connected');
    this.refresh(0);
    await this.#putStatus();
  }

  #push(): void {
    const id = this.#identity as ProxyIdentity;
    const snapshot = this.#ctx.cache.get(id.proxyId)?.snapshot;
    if (snapshot === undefined) return;
    const nonce = randomUUID();
    const sent = this.#ctx.cache.recordSent(id.proxyId, nonce, performance.now());
    const { config } = snapshot;
    try {
      this.#call.write({ snapshot: { version: sent.version, nonce, ...config } });
    } catch (err) {
      this.#ctx.metrics.pushes.inc({ type: 'snapshot', result: 'error' });
      throw err;
    }
    this.#ctx.metrics.pushes.inc({ type: 'snapshot', result: 'ok' });
    this.#log.debug({ version: sent.version, nonce }, 'snapshot sent');
    this.#enqueue(() => this.#putStatus());
  }

  async #ack(ack: AckMessage): Promise<void> {
    const proxyId = (this.#identity as ProxyIdentity).proxyId;
    const version = ack.version ?? '';
    const result = this.#ctx.cache.recordAck(proxyId, version, ack.nonce ?? '');
    if (!result.accepted || result.sent === undefined) {
      this.#log.debug({ version, nonce: ack.nonce }, 'ignoring a stale ACK');
      return;
    }
    this.#ctx.metrics.pushDuration.observe((performance.now() - result.sent.sentAtMs) / 1000);
    this.#log.debug({ version }, 'snapshot ACKed');
    await this.#putStatus();
  }

  async #nack(nack: NackMessage): Promise<void> {
    const proxyId = (this.#identity as ProxyIdentity).proxyId;
    const version = nack.version ?? '';
    const reason = nack.errorDetail ?? '';
    if (!this.#ctx.cache.recordNack(proxyId, version, nack.nonce ?? '', reason, new Date())) {
      this.#log.debug({ version, nonce: nack.nonce }, 'ignoring a stale NACK');
      return;
    }
    this.#ctx.metrics.nacks.inc({ type: 'snapshot' });
    this.#log.warn({ version, reason }, 'proxy rejected the snapshot; it keeps its last good config');
    await this.#putStatus();
  }

  async #register(register: RegisterMessage): Promise<void> {
    let registration: EndpointRegistration;
    try {
      registration = registrationOf(register, this.#identity as ProxyIdentity);
    } catch (err) {
      if (!(err instanceof InvalidMessageError)) throw err;
      this.#fail(GrpcStatus.INVALID_ARGUMENT, err.message);
      return;
    }
    const previous = this.#registration;
    const ops: TxnOp[] = [];
    if (previous !== undefined && previous.namespace !== registration.namespace) {
      ops.push({ op: 'delete', key: endpointKey(previous.namespace, previous.proxyId) });
    }
    if (await this.#putEndpoint(registration, ops)) this.#log.info({ registration }, 'endpoint registered');
  }

  async #deregister(): Promise<void> {
    const registration = this.#registration;
    if (registration === undefined) {
      this.#log.warn('Deregister without a Register; nothing to drain');
      return;
    }
    if (await this.#putEndpoint({ ...registration, draining: true })) {
      this.#log.info({ namespace: registration.namespace }, 'endpoint draining');
    }
  }

  /** Writes `registration` under the lease; on a store failure ends the stream (UNAVAILABLE). */
  async #putEndpoint(registration: EndpointRegistration, before: readonly TxnOp[] = []): Promise<boolean> {
    const lease = this.#lease as Lease;
    const key = endpointKey(registration.namespace, registration.proxyId);
    try {
      await this.#ctx.store.txn([
        ...before,
        { op: 'put', key, value: JSON.stringify(registration), lease: lease.id },
      ]);
    } catch (err) {
      this.#fail(GrpcStatus.UNAVAILABLE, `cannot write the endpoint ${key}: ${(err as Error).message}`);
      return false;
    }
    this.#registration = registration;
    return true;
  }

  #record(): ProxyStatusRecord | undefined {
    const id = this.#identity;
    const entry = id && this.#ctx.cache.get(id.proxyId);
    if (id === undefined || entry === undefined) return undefined;
    return {
      proxyId: id.proxyId,
      identity: id,
      replicaId: this.#ctx.replicaId,
      connected: true,
      sentVersion: entry.sent?.version ?? '',
      ackedVersion: entry.ackedVersion,
      syncedRevision: entry.syncedRevision,
      ...(entry.lastNack !== undefined ? { lastNack: entry.lastNack } : {}),
      connectedAt: this.#connectedAt,
    };
  }

  /** Writes the status record (as it is now) under the lease, unless unchanged since the last write. */
  async #putStatus(): Promise<void> {
    if (this.#state !== 'open') return;
    const record = this.#record();
    const lease = this.#lease;
    if (record === undefined || lease === undefined) return;
    const json = JSON.stringify(record);
    if (json === this.#lastStatusJson) return;
    try {
      await this.#ctx.store.txn([{ op: 'put', key: proxyKey(record.proxyId), value: json, lease: lease.id }]);
      this.#lastStatusJson = json;
    } catch (err) {
      this.#log.warn({ err }, 'cannot write the proxy status');
    }
  }
}
