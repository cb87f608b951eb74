/**
 * gRPC plumbing for `weft.v1.Identity` (proto/weft/v1/identity.proto): the service definition
 * (for the control plane), a client constructor (for the sidecar agent) and the message shapes.
 *
 * Invariant: messages are decoded with the loader options of the discovery stream
 * (`LOADER_OPTIONS`): lowerCamelCase fields, fields at their proto3 default omitted — so every
 * field is optional here. Transport credentials are always the caller's (TLS in practice).
 * This module loads no forge and no CA code: the sidecar imports it.
 */
import { join } from 'node:path';
import {
  type CallOptions,
  type ChannelCredentials,
  type ChannelOptions,
  type Client,
  type ClientUnaryCall,
  loadPackageDefinition,
  type Metadata,
  type ServerUnaryCall,
  type ServiceClientConstructor,
  type ServiceDefinition,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { projectRoot } from '../../sidecar/proxy/config/root.ts';
import { LOADER_OPTIONS } from '../discovery/proto.ts';

/** `weft.v1.IssueRequest`. */
export interface IssueRequestMessage {
  /** PKCS#10, PEM. */
  readonly csrPem?: string;
  /** Join token; empty on renewal (the client certificate authenticates). */
  readonly token?: string;
}

/** `weft.v1.IssueResponse`. */
export interface IssueResponseMessage {
  /** Leaf first, then intermediates (not the root). */
  readonly certificateChainPem?: string;
  readonly trustBundlePem?: readonly string[];
  readonly spiffeId?: string;
  /** Leaf notAfter, ms since the epoch. */
  readonly expiresAtMs?: number;
  readonly trustDomain?: string;
}

/** The server side of one `Issue` call. */
export type IssueServerCall = ServerUnaryCall<IssueRequestMessage, IssueResponseMessage>;

/** A `weft.v1.Identity` client stub. */
export interface IdentityClientStub extends Client {
  Issue(
    request: IssueRequestMessage,
    metadata: Metadata,
    options: CallOptions,
    callback: (error: ServiceError | null, response?: IssueResponseMessage) => void,
  ): ClientUnaryCall;
}

let loaded: ServiceClientConstructor | undefined;

function identityConstructor(): ServiceClientConstructor {
  if (loaded === undefined) {
    const definition = loadSync('weft/v1/identity.proto', {
      ...LOADER_OPTIONS,
      includeDirs: [join(projectRoot(), 'proto')],
    });
    const weft = loadPackageDefinition(definition).weft as { v1: { Identity: ServiceClientConstructor } };
    loaded = weft.v1.Identity;
  }
  return loaded;
}

/**
 * The `weft.v1.Identity` service definition, for `Server.addService`. Loaded once; throws when
 * proto/ cannot be found or does not parse.
 */
export function identityServiceDefinition(): ServiceDefinition {
  return identityConstructor().service;
}

/** A client for the Identity service at `address` (`host:port`); the caller closes it. */
export function createIdentityClient(
  address: string,
  credentials: ChannelCredentials,
  options: ChannelOptions = {},
): IdentityClientStub {
  const Ctor = identityConstructor();
  return new Ctor(address, credentials, options) as unknown as IdentityClientStub;
}
