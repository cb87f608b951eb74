/**
 * `weft gateway`: the north-south entry of the mesh, built on the same proxy core as the sidecar
 * (sidecar/proxy/) plus the gateway's filters (gateway/filters/). It serves the listeners of one
 * `Gateway` resource, on a static bootstrap file (`--config`) or fed by the control plane
 * (`--control-plane host:port --gateway NAME`).
 *
 * Control-plane mode: the agent says Hello with kind "gateway" and service = the Gateway name;
 * with `--ca-bundle` it gets its own SPIFFE certificate from the mesh CA with a join token minted
 * for it (`weft token create --service <gateway name>`: service account = the gateway name, so
 * its ID is `spiffe://<td>/ns/<namespace>/sa/<gateway name>`) and calls mesh Services over mTLS
 * with it. Like a sidecar, it keeps its last ACKed snapshot (and SVID) on disk and keeps serving
 * its last good config when the control plane is gone, also across a restart. It registers no
 * endpoint: nothing in the mesh routes to a gateway.
 *
 * Ports: the admin listener (`/ready`, `/metrics`, `/config_dump`) binds at once (default 15000);
 * Gateway listener ports map to bind ports as control-plane/translate/gateway.ts says (>= 1024 as
 * is, privileged ports + 10000, or `--port GATEWAY_PORT=BIND_PORT`). HTTPS certificates come from
 * `--cert-dir` (gateway/certificates.ts) or, in a static bootstrap, inline PEM or file paths.
 *
 * SIGHUP re-reads the certificate files (`--cert-dir`, or a bootstrap's `certChainFile`) for new
 * handshakes (logs `certificates reloaded`, or `certificate reload failed` and the old ones stay).
 * SIGTERM or SIGINT drains: /ready turns 503, listeners stop accepting after `drainDelayMs`, and
 * in-flight requests get the listener's drain period. Log lines (JSON on stdout): `admin ready`,
 * `listener ready` (name, address, port) per listener, `gateway ready`, `draining`, `stopped`.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DiscoveryClient } from '../sidecar/agent/client.ts';
import type { IdentityClient } from '../sidecar/agent/identity.ts';
import { AdminServer } from '../sidecar/proxy/admin.ts';
import { loadBootstrap } from '../sidecar/proxy/config/load.ts';
import { type ProxyConfig, proxyConfigOf } from '../sidecar/proxy/config/model.ts';
import { identityFromPem } from '../sidecar/proxy/identity.ts';
import { registerOverloadMetrics } from '../sidecar/proxy/overload.ts';
import { ProxyCore } from '../sidecar/proxy/proxy.ts';
import { registerLogMetrics } from '../sidecar/proxy/telemetry/log-destination.ts';
import { createLogger, type Logger, startAccessLog } from '../sidecar/proxy/telemetry/logger.ts';
import { ProxyMetrics } from '../sidecar/proxy/telemetry/metrics.ts';
import { startIdentity } from '../sidecar/run.ts';
import { certDirResolver } from './certificates.ts';
import { edgeFilterFactories, gatewayFilters } from './filters/index.ts';
import { logEdgeEvents, registerEdgeMetrics } from './filters/limits/telemetry.ts';

/** Where a dynamic gateway gets its config and who it says it is. */
export interface GatewayDynamicOptions {
  /** Discovery address(es) of the control plane, `host:port[,host:port...]`. */
  readonly controlPlane: string;
  /** The `Gateway` resource this proxy serves (also its service account). */
  readonly gateway: string;
  readonly namespace?: string;
  /** Address the gateway listeners bind (default 127.0.0.1). */
  readonly listenAddress?: string;
  /** Gateway listener port → bind port (0: any free port); see translate/gateway.ts. */
  readonly listenerPorts?: Readonly<Record<string, number>>;
  /** Stable id of this proxy (default `gateway-<name>.<namespace>`). */
  readonly proxyId?: string;
  /** Where the last ACKed snapshot and SVID are kept (default `.weft/gateways`). */
  readonly dataDir?: string;
  /** mTLS: the control plane's CA bundle (PEM file). */
  readonly caBundlePath?: string;
  /** Join token for the first certificate. */
  readonly token?: string;
}

export interface GatewayOptions {
  /** Static mode: a bootstrap YAML/JSON file (`weft.v1.Bootstrap`). */
  readonly configPath?: string;
  /** Control-plane mode (used when `configPath` is absent). */
  readonly dynamic?: GatewayDynamicOptions;
  /** Directory of `<name>.crt` / `<name>.key` server certificates for HTTPS listeners. */
  readonly certDir?: string;
  /** Static mode: the gateway's mesh SVID (PEM files) for mTLS to mesh Services. */
  readonly certPath?: string;
  readonly keyPath?: string;
  /** Overrides `admin.port` of the bootstrap (default 15000; 0 picks a free port). */
  readonly adminPort?: number;
  readonly accessLogSampleRate?: number;
  /** Keep serving this long after SIGTERM before listeners stop accepting (ms, default 1000). */
  readonly drainDelayMs?: number;
  readonly logLevel?: string;
}

/** Runs a gateway until a termination signal; resolves once it has stopped. */
export async function runGateway(options: GatewayOptions): Promise<void> {
  const logger = createLogger(options.logLevel);
  const log = logger.child({ component: 'gateway' });
  const bootstrap = options.configPath ? await loadBootstrap(options.configPath) : undefined;
  const dyn = options.dynamic;
  if (bootstrap === undefined && dyn === undefined)
    throw new Error('either --config or --control-plane is required');
  const name = bootstrap?.node?.service ?? dyn?.gateway ?? 'gateway';
  const namespace = bootstrap?.node?.namespace ?? dyn?.namespace ?? 'default';
  const node = bootstrap?.node ?? { service: name, namespace, workload: name };

  const metrics = new ProxyMetrics({ service: name, workload: node.workload ?? name, namespace }, [
    registerEdgeMetrics,
  ]);
  const stopAccessLog = startAccessLog(logger, options.accessLogSampleRate ?? 0);
  const stopEdgeLog = logEdgeEvents(logger);
  registerOverloadMetrics(metrics.registry);
  registerLogMetrics(metrics.registry);
  const proxy = new ProxyCore({
    filters: gatewayFilters(),
    listenerFilters: edgeFilterFactories({ logger }),
    resolveCertificate: certDirResolver(options.certDir),
  });
  let draining = false;
  const admin = new AdminServer({
    ready: () => !draining && proxy.version !== '' && proxy.identityReady,
    metrics: () => metrics.expose(),
    configDump: () => ({ node, ...proxy.dump() }),
  });
  const adminAddress = bootstrap?.admin?.address ?? '127.0.0.1';
  const adminPort = await admin.listen(adminAddress, options.adminPort ?? bootstrap?.admin?.port ?? 15000);
  log.info({ address: adminAddress, port: adminPort }, 'admin ready');

  let client: DiscoveryClient | undefined;
  let identity: IdentityClient | undefined;
  if (bootstrap !== undefined) {
    if (options.certPath !== undefined && options.keyPath !== undefined) {
      const [cert, key] = await Promise.all([
        readFile(options.certPath, 'utf8'),
        readFile(options.keyPath, 'utf8'),
      ]);
      proxy.setIdentity(identityFromPem(cert, key));
      log.info(proxy.identity, 'identity loaded');
    }
    await proxy.apply(proxyConfigOf(bootstrap), 'static');
  } else if (dyn !== undefined) {
    ({ client, identity } = await startAgent(dyn, proxy, namespace, logger));
    await client.onFirstConfig;
  }
  for (const l of proxy.listeners()) log.info(l, 'listener ready');
  log.info({ version: proxy.version, node }, 'gateway ready');
  // SIGHUP: re-apply the config in force, which re-reads certificate files (--cert-dir, *File);
  // in static mode the bootstrap file is read again first and applied as `static-<n>` (all or
  // nothing: an invalid file logs `config reload failed` and the running config stays).
  let reloads = 0;
  const onHangup = (): void => {
    const config = proxy.config;
    if (config === undefined) return;
    if (options.configPath !== undefined) {
      const version = `static-${++reloads}`;
      loadBootstrap(options.configPath)
        .then((next) => proxy.apply(proxyConfigOf(next), version))
        .then(
          () => log.info({ version }, 'config reloaded'),
          (err: unknown) => log.error({ err: (err as Error).message }, 'config reload failed'),
        );
      return;
    }
    proxy.apply(config, proxy.version).then(
      () => log.info({ version: proxy.version }, 'certificates reloaded'),
      (err: unknown) => log.error({ err }, 'certificate reload failed; the old certificates stay'),
    );
  };
  process.on('SIGHUP', onHangup);

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      if (draining) return;
      draining = true;
      log.info({ signal, inflight: proxy.inflight }, 'draining');
      const delayMs = options.drainDelayMs ?? 1000;
      new Promise((r) => setTimeout(r, delayMs))
        .then(() => proxy.close())
        .then(() => client?.close())
        .then(() => admin.close())
        .then(resolve, (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          resolve();
        });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  process.off('SIGHUP', onHangup);
  identity?.close();
  stopAccessLog();
  stopEdgeLog();
  metrics.close();
  log.info('stopped');
  logger.flush();
}

async function startAgent(
  dyn: GatewayDynamicOptions,
  proxy: ProxyCore,
  namespace: string,
  logger: Logger,
): Promise<{ client: DiscoveryClient; identity: IdentityClient | undefined }> {
  const proxyId = dyn.proxyId ?? `gateway-${dyn.gateway}.${namespace}`;
  const dataDir = dyn.dataDir ?? join('.weft', 'gateways');
  await mkdir(dataDir, { recursive: true });
  const fileBase = join(dataDir, proxyId.replace(/[^A-Za-z0-9._-]/g, '_'));
  const identity = dyn.caBundlePath
    ? await startIdentity(
        {
          controlPlane: dyn.controlPlane,
          service: dyn.gateway,
          namespace,
          appPort: 0,
          caBundlePath: dyn.caBundlePath,
          ...(dyn.token !== undefined && { token: dyn.token }),
        },
        proxy,
        `${fileBase}.svid.json`,
        logger,
      )
    : undefined;
  const client = new DiscoveryClient({
    address: dyn.controlPlane,
    ...(identity !== undefined && { credentials: identity.channelCredentials() }),
    identity: {
      proxyId,
      kind: 'gateway',
      service: dyn.gateway,
      namespace,
      workload: dyn.gateway,
      labels: {},
      listenAddress: dyn.listenAddress ?? '127.0.0.1',
      ...(dyn.listenerPorts !== undefined && { listenerPorts: dyn.listenerPorts }),
    },
    proxy: {
      apply: async (config: ProxyConfig, version: string): Promise<void> => {
        await proxy.apply(config, version);
        const roots = config.trustBundle?.rootsPem;
        if (identity !== undefined && roots !== undefined && roots.length > 0) identity.setTrustBundle(roots);
      },
    },
    cacheFile: `${fileBase}.snapshot.json`,
    logger,
  });
  await client.start();
  return { client, identity };
}
