/**
 * gRPC plumbing for `weft.v1.Discovery` (proto/weft/v1/discovery.proto): loads the proto once
 * with @grpc/proto-loader and exposes the service definition (for the server), a client
 * constructor (for the sidecar agent) and hand-written TypeScript shapes of the messages.
 *
 * Invariant: decoded messages have the proxy config types' shape (sidecar/proxy/config/types.ts,
 * the proto3 JSON mapping): lowerCamelCase field names, enums by name, and every field that is
 * absent or at its proto3 default omitted — including empty repeated fields and empty maps. That
 * is what the loader options below give (`defaults: false, arrays: false, objects: false`), and
 * why every field of the message types is optional. Oneofs carry no virtual `kind` field: the set
 * member is the one present. No 64-bit fields are used (`longs: Number` is a safeguard).
 *
 * Transport security is the caller's: credentials are always a parameter (plain text in tests,
 * mTLS later).
 */
import { join } from 'node:path';
import {
  type CallOptions,
  type ChannelCredentials,
  type ChannelOptions,
  type Client,
  type ClientDuplexStream,
  loadPackageDefinition,
  type ServerDuplexStream,
  type ServiceClientConstructor,
  type ServiceDefinition,
} from '@grpc/grpc-js';
import { loadSync, type Options } from '@grpc/proto-loader';
import { projectRoot } from '../../sidecar/proxy/config/root.ts';
import type {
  Cluster,
  ClusterLoadAssignment,
  Listener,
  RateLimitService,
  RouteConfiguration,
  TlsCertificate,
  TrustBundle,
} from '../../sidecar/proxy/config/types.ts';

/** The proto-loader options that give decoded messages the proxy config types' shape. */
export const LOADER_OPTIONS: Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: false,
  arrays: false,
  objects: false,
  oneofs: false,
};

/** `weft.v1.Hello`: who a proxy is. Ports are TCP ports; '' / 0 / absent mean "default". */
export interface HelloMessage {
  readonly proxyId?: string;
  readonly kind?: string;
  readonly service?: string;
  readonly namespace?: string;
  readonly workload?: string;
  readonly labels?: Readonly<Record<string, string>>;
  /** The snapshot version the proxy serves now ('' or absent when none). */
  readonly version?: string;
  readonly outboundPort?: number;
  readonly inboundPort?: number;
  readonly appPort?: number;
  readonly listenAddress?: string;
  /** Gateway: Gateway listener port → bind port (0: any free port). */
  readonly listenerPorts?: Readonly<Record<string, number>>;
  /** Sidecar: TCP upstream binds (`--upstream service[.ns]:port=localPort`). */
  readonly tcpUpstreams?: readonly TcpUpstreamMessage[];
  /** Sidecar: where the outbound listener binds, when not `listenAddress` (field 16). */
  readonly outboundAddress?: string;
}

/** `weft.v1.TcpUpstream`: a local bind for a Service's TCP port. */
export interface TcpUpstreamMessage {
  readonly service?: string;
  readonly namespace?: string;
  readonly port?: number;
  readonly localPort?: number;
}

/** `weft.v1.Snapshot`: a proxy's whole config at one store revision (`version`, decimal). */
export interface SnapshotMessage {
  readonly version?: string;
  readonly nonce?: string;
  readonly listeners?: readonly Listener[];
  readonly routes?: readonly RouteConfiguration[];
  readonly clusters?: readonly Cluster[];
  readonly endpoints?: readonly ClusterLoadAssignment[];
  /** The mesh's roots; absent until the CA is on (the proxy verifies peers against them). */
  readonly trustBundle?: TrustBundle;
  /** The store of global rate limits (gateway proxies; issue 7). */
  readonly rateLimitService?: RateLimitService;
  /** Server certificates (gateway TLS termination). */
  readonly certificates?: readonly TlsCertificate[];
}

/** `weft.v1.Ack`: the proxy applied the snapshot sent with `nonce`. */
export interface AckMessage {
  readonly version?: string;
  readonly nonce?: string;
}

/** `weft.v1.Nack`: the proxy rejected the snapshot sent with `nonce` and keeps its last good one. */
export interface NackMessage {
  readonly version?: string;
  readonly nonce?: string;
  readonly errorDetail?: string;
}

/** `weft.v1.Register`: the proxy's workload as an endpoint of `service`. */
export interface RegisterMessage {
  readonly service?: string;
  readonly namespace?: string;
  readonly address?: string;
  readonly port?: number;
  readonly labels?: Readonly<Record<string, string>>;
  readonly weight?: number;
}

/** `weft.v1.Deregister`: graceful shutdown, no fields. */
export type DeregisterMessage = Readonly<Record<string, never>>;

/** `weft.v1.ProxyMessage` (proxy → control plane): exactly one member is set. */
export interface ProxyMessage {
  readonly hello?: HelloMessage;
  readonly ack?: AckMessage;
  readonly nack?: NackMessage;
  readonly register?: RegisterMessage;
  readonly deregister?: DeregisterMessage;
}

/** `weft.v1.ControlMessage` (control plane → proxy). */
export interface ControlMessage {
  readonly snapshot?: SnapshotMessage;
}

/** The server side of one `Stream` call. */
export type DiscoveryServerCall = ServerDuplexStream<ProxyMessage, ControlMessage>;
/** The client side of one `Stream` call. */
export type DiscoveryClientCall = ClientDuplexStream<ProxyMessage, ControlMessage>;

/** A `weft.v1.Discovery` client stub. */
export interface DiscoveryClientStub extends Client {
  Stream(options?: CallOptions): DiscoveryClientCall;
}

let loaded: ServiceClientConstructor | undefined;

function discoveryConstructor(): ServiceClientConstructor {
  if (loaded === undefined) {
    const definition = loadSync('weft/v1/discovery.proto', {
      ...LOADER_OPTIONS,
      includeDirs: [join(projectRoot(), 'proto')],
    });
    const grpcObject = loadPackageDefinition(definition);
    const weft = grpcObject.weft as { v1: { Discovery: ServiceClientConstructor } };
    loaded = weft.v1.Discovery;
  }
  return loaded;
}

/**
 * The `weft.v1.Discovery` service definition, for `Server.addService`. Loaded once; throws when
 * proto/ cannot be found or does not parse.
 */
export function discoveryService(): ServiceDefinition {
  return discoveryConstructor().service;
}

/**
 * A client for the Discovery service at `address` (`host:port`). Throws like `discoveryService`.
 * The caller closes it (`client.close()`).
 */
export function createDiscoveryClient(
  address: string,
  credentials: ChannelCredentials,
  options: ChannelOptions = {},
): DiscoveryClientStub {
  const Ctor = discoveryConstructor();
  return new Ctor(address, credentials, options) as unknown as DiscoveryClientStub;
}
