/**
 * `weft sidecar`: a sidecar proxy, on a static bootstrap file (`--config`) or fed by the control
 * plane (`--control-plane host:port`). It binds the admin listener (15000) at once; the traffic
 * listeners (outbound 15001, inbound 15006 by convention) come from the config. `/ready` turns
 * 200 only after the first config is applied (from the stream, or from the last ACKed snapshot
 * on disk when the control plane is unreachable).
 *
 * Static mode with mTLS: `--cert FILE --key FILE` give the proxy its SVID (the trust bundle comes
 * from the bootstrap's `trustBundle`); SIGHUP re-reads both files and rotates to them without
 * dropping a request (ProxyCore.setIdentity; logs `identity loaded`, then `identity rotated`, or
 * `identity reload failed` and the old certificate stays). `/ready` waits for an identity when the
 * config asks for TLS. In static mode SIGHUP also re-reads the bootstrap file and applies it
 * (`config reloaded` with the version `static-<n>`, or `config reload failed` with the reason).
 *
 * SIGTERM or SIGINT drains: /ready turns 503, the sidecar deregisters its endpoint (peers stop
 * sending new requests), keeps serving for `drainDelayMs`, then listeners stop accepting and
 * in-flight requests get the listener's drain period to finish.
 *
 * Log lines to look for (JSON on stdout): `admin ready` (port), `listener ready` (name, address,
 * port) per listener, `sidecar ready`, `draining`, `stopped`.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DiscoveryClient } from './agent/client.ts';
import { IdentityClient } from './agent/identity.ts';
import { loadSvid, writeSvid } from './agent/svid-cache.ts';
import type { TcpUpstreamFlag } from './agent/tcp-upstreams.ts';
import { AdminServer } from './proxy/admin.ts';
import { loadBootstrap } from './proxy/config/load.ts';
import { type ProxyConfig, proxyConfigOf } from './proxy/config/model.ts';
import { setNewTraceSampleRate } from './proxy/http/trace.ts';
import { identityFromPem } from './proxy/identity.ts';
import { registerOverloadMetrics } from './proxy/overload.ts';
import { ProxyCore } from './proxy/proxy.ts';
import { registerLogMetrics } from './proxy/telemetry/log-destination.ts';
import { createLogger, type Logger, startAccessLog } from './proxy/telemetry/logger.ts';
import { ProxyMetrics, WORKLOAD_LABEL } from './proxy/telemetry/metrics.ts';
import { OtlpSpanExporter } from './proxy/telemetry/otlp.ts';

/** Where a dynamic sidecar gets its config and who it says it is. */
export interface DynamicOptions {
  /**
   * Discovery address of the control plane, `host:port` (e.g. `127.0.0.1:15012`), or several
   * replicas' addresses, comma-separated, tried in turn (failover: sidecar/agent/client.ts).
   */
  readonly controlPlane: string;
  readonly service: string;
  readonly namespace?: string;
  readonly workload?: string;
  /** Extra endpoint labels, e.g. `{ version: 'v1' }`; `app: <service>` is always added. */
  readonly labels?: Readonly<Record<string, string>>;
  /** The local app's port on 127.0.0.1 (the inbound listener's target). */
  readonly appPort: number;
  /** Local binds for TCP Service ports (`--upstream`; agent/tcp-upstreams.ts). */
  readonly tcpUpstreams?: readonly TcpUpstreamFlag[];
  readonly outboundPort?: number;
  readonly inboundPort?: number;
  readonly listenAddress?: string;
  /** Where the outbound listener binds instead of `listenAddress` (e.g. 127.0.0.1 beside a pod IP). */
  readonly outboundAddress?: string;
  /** The address peers dial, registered as the endpoint (default `listenAddress`; for a 0.0.0.0 bind). */
  readonly advertiseAddress?: string;
  /** Stable id of this proxy (default `<workload>-<inboundPort>.<namespace>`). */
  readonly proxyId?: string;
  /** Where the last ACKed snapshot (and the SVID, with mTLS) is kept (default `.weft/sidecars`). */
  readonly dataDir?: string;
  /**
   * mTLS: the control plane's CA bundle (PEM file, e.g. `.weft/ca-bundle.pem`). With it the
   * sidecar talks TLS to the control plane and gets its SPIFFE certificate from the mesh CA.
   */
  readonly caBundlePath?: string;
  /** Join token for the first certificate (`weft token create`). */
  readonly token?: string;
}

export interface SidecarOptions {
  /** Path of a bootstrap YAML/JSON file (`weft.v1.Bootstrap`); static mode. */
  readonly configPath?: string;
  /** Control-plane mode (used when `configPath` is absent). */
  readonly dynamic?: DynamicOptions;
  /** Static mode: the proxy's SVID certificate chain and key (PEM files), reloaded on SIGHUP. */
  readonly certPath?: string;
  readonly keyPath?: string;
  /** Overrides `admin.port` of the bootstrap (default 15000; 0 picks a free port). */
  readonly adminPort?: number;
  /** Overrides `admin.address` of the bootstrap (default 127.0.0.1). */
  readonly adminAddress?: string;
  /** Fraction of requests written to the access log, 0..1 (default 0: off). */
  readonly accessLogSampleRate?: number;
  /** OTLP/HTTP traces endpoint for span export (telemetry/otlp.ts); absent: no export. */
  readonly otlpEndpoint?: string;
  /** Share of traces started by this proxy that are sampled, 0..1 (default 0; see http/trace.ts). */
  readonly traceSampleRate?: number;
  /** After deregistering, keep serving this long before closing listeners (ms, default 1000). */
  readonly drainDelayMs?: number;
  readonly logLevel?: string;
}

/** Runs a sidecar until a termination signal; resolves once it has stopped. */
export async function runSidecar(options: SidecarOptions): Promise<void> {
  const logger = createLogger(options.logLevel);
  const log = logger.child({ component: 'sidecar' });
  const bootstrap = options.configPath ? await loadBootstrap(options.configPath) : undefined;
  const dyn = options.dynamic;
  if (bootstrap === undefined && dyn === undefined)
    throw new Error('either --config or --control-plane is required');
  const service = bootstrap?.node?.service ?? dyn?.service ?? 'unknown';
  const namespace = bootstrap?.node?.namespace ?? dyn?.namespace ?? 'default';
  const workload = bootstrap?.node?.workload ?? dyn?.workload ?? service;
  const node = bootstrap?.node ?? { service, namespace, workload };

  const metrics = new ProxyMetrics({ service, workload, namespace });
  registerOverloadMetrics(metrics.registry);
  registerLogMetrics(metrics.registry);
  const stopAccessLog = startAccessLog(logger, options.accessLogSampleRate ?? 0);
  setNewTraceSampleRate(options.traceSampleRate ?? 0);
  const spans =
    options.otlpEndpoint === undefined
      ? undefined
      : new OtlpSpanExporter({ endpoint: options.otlpEndpoint, service, namespace, workload, logger });
  const proxy = new ProxyCore();
  metrics.configVersion(() => proxy.version);
  let draining = false;
  const admin = new AdminServer({
    ready: () => !draining && proxy.version !== '' && proxy.identityReady,
    metrics: () => metrics.expose(),
    configDump: () => ({ node, ...proxy.dump() }),
  });
  const adminAddress = options.adminAddress ?? bootstrap?.admin?.address ?? '127.0.0.1';
  const adminPort = await admin.listen(adminAddress, options.adminPort ?? bootstrap?.admin?.port ?? 15000);
  log.info({ address: adminAddress, port: adminPort }, 'admin ready');

  let client: DiscoveryClient | undefined;
  let identity: IdentityClient | undefined;
  const { certPath, keyPath } = options;
  const loadIdentity = async (msg: string): Promise<void> => {
    if (certPath === undefined || keyPath === undefined) return;
    const [cert, key] = await Promise.all([readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')]);
    proxy.setIdentity(identityFromPem(cert, key));
    log.info(proxy.identity, msg);
  };
  // Static mode: SIGHUP also re-reads the bootstrap and applies it as `static-<n>` (all or
  // nothing: an invalid file logs `config reload failed` and the running config stays).
  let reloads = 0;
  const reloadConfig = async (): Promise<void> => {
    if (options.configPath === undefined) return;
    const next = await loadBootstrap(options.configPath);
    const version = `static-${++reloads}`;
    await proxy.apply(proxyConfigOf(next), version);
    log.info({ version }, 'config reloaded');
  };
  const onHangup = (): void => {
    loadIdentity('identity rotated').catch((err: unknown) => log.error({ err }, 'identity reload failed'));
    reloadConfig().catch((err: unknown) =>
      log.error({ err: (err as Error).message }, 'config reload failed'),
    );
  };
  if (bootstrap !== undefined) {
    await loadIdentity('identity loaded');
    await proxy.apply(proxyConfigOf(bootstrap), 'static');
    process.on('SIGHUP', onHangup);
  } else if (dyn !== undefined) {
    ({ client, identity } = await startAgent(dyn, proxy, workload, namespace, logger));
    await client.onFirstConfig;
  }
  for (const l of proxy.listeners()) log.info(l, 'listener ready');
  log.info({ version: proxy.version, node }, 'sidecar ready');

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      if (draining) return;
      draining = true;
      log.info({ signal, inflight: proxy.inflight }, 'draining');
      drain(proxy, client, options.drainDelayMs ?? 1000)
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
  await spans?.close();
  metrics.close();
  log.info('stopped');
  logger.flush();
}

async function startAgent(
  dyn: DynamicOptions,
  proxy: ProxyCore,
  workload: string,
  namespace: string,
  logger: Logger,
): Promise<{ client: DiscoveryClient; identity: IdentityClient | undefined }> {
  const inboundPort = dyn.inboundPort ?? 15006;
  const listenAddress = dyn.listenAddress ?? '127.0.0.1';
  const proxyId = dyn.proxyId ?? `${workload}-${inboundPort}.${namespace}`;
  const labels = { ...dyn.labels, app: dyn.service };
  const dataDir = dyn.dataDir ?? join('.weft', 'sidecars');
  await mkdir(dataDir, { recursive: true });
  const fileBase = join(dataDir, proxyId.replace(/[^A-Za-z0-9._-]/g, '_'));
  const identity = dyn.caBundlePath
    ? await startIdentity(dyn, proxy, `${fileBase}.svid.json`, logger)
    : undefined;
  const target = {
    apply: async (config: ProxyConfig, version: string): Promise<void> => {
      await proxy.apply(config, version);
      // A root rotation reaches the proxy with the snapshot; the identity client trusts it too.
      const roots = config.trustBundle?.rootsPem;
      if (identity !== undefined && roots !== undefined && roots.length > 0) identity.setTrustBundle(roots);
    },
  };
  const client = new DiscoveryClient({
    address: dyn.controlPlane,
    ...(identity !== undefined && { credentials: identity.channelCredentials() }),
    identity: {
      proxyId,
      kind: 'sidecar',
      service: dyn.service,
      namespace,
      workload,
      labels,
      outboundPort: dyn.outboundPort ?? 15001,
      inboundPort,
      appPort: dyn.appPort,
      listenAddress,
      ...(dyn.tcpUpstreams !== undefined && { tcpUpstreams: dyn.tcpUpstreams }),
      ...(dyn.outboundAddress !== undefined && { outboundAddress: dyn.outboundAddress }),
    },
    register: {
      service: dyn.service,
      namespace,
      address: dyn.advertiseAddress ?? listenAddress,
      port: inboundPort,
      // The workload name rides on the endpoint so callers can label `destination_workload`.
      labels: { ...labels, [WORKLOAD_LABEL]: workload },
      weight: 1,
    },
    proxy: target,
    cacheFile: `${fileBase}.snapshot.json`,
    logger,
  });
  await client.start();
  return { client, identity };
}

/**
 * Starts the identity client: serves a cached, unexpired SVID at once (so a restart while the
 * control plane is down keeps mTLS working), otherwise waits for the first certificate; every
 * new certificate is swapped into the proxy and cached (mode 0600).
 */
export async function startIdentity(
  dyn: DynamicOptions,
  proxy: ProxyCore,
  svidFile: string,
  logger: Logger,
): Promise<IdentityClient> {
  const log = logger.child({ component: 'identity' });
  const bundlePem = await readFile(dyn.caBundlePath as string, 'utf8');
  const identity = new IdentityClient({
    address: dyn.controlPlane,
    bundlePem,
    ...(dyn.token !== undefined && { token: dyn.token }),
    logger,
  });
  identity.onIdentity((svid) => {
    proxy.setIdentity(svid);
    log.info(
      { spiffeId: svid.spiffeId, expiresAt: new Date(svid.expiresAtMs).toISOString() },
      'identity issued',
    );
    writeSvid(svidFile, svid).catch((err: unknown) => log.warn({ err }, 'could not cache the identity'));
  });
  const cached = await loadSvid(svidFile);
  if (cached !== undefined) {
    proxy.setIdentity(cached);
    log.info({ spiffeId: cached.spiffeId }, 'serving the cached identity');
    identity.start().catch((err: unknown) => log.error({ err }, 'identity client stopped'));
  } else {
    await identity.start();
  }
  return identity;
}

/** Deregisters, keeps serving `delayMs` so peers learn of it, then drains the listeners. */
async function drain(proxy: ProxyCore, client: DiscoveryClient | undefined, delayMs: number): Promise<void> {
  if (client !== undefined) {
    await client.deregister();
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
  }
  await proxy.close();
  await client?.close();
}
