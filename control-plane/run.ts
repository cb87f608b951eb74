/**
 * `weft control-plane`: the control plane process. Opens the store (embedded under `dataDir`
 * by default, etcd when endpoints are given), keeps a watched view of the mesh, serves the
 * discovery stream (15012), the admin API (15080, bearer token in `<dataDir>/admin-token`) and
 * its own metrics and health (15014, as istiod's monitoring port). Every store change wakes the
 * translator for the connected proxies; unchanged snapshots are not pushed.
 *
 * With `tls`, the mesh CA (ca/setup.ts) runs on the store and writes `<dataDir>/ca-bundle.pem`, and
 * the discovery port is TLS (a CA-issued certificate) and also serves `weft.v1.Identity`. Without
 * it there is no CA and everything is plain text (the stored trust bundle switches mesh mTLS on).
 *
 * Log lines to look for (JSON on stdout): `store open`, `discovery ready` (port),
 * `admin api ready` (port), `webhook ready` (port; with `webhookPort`), `monitoring ready` (port),
 * `control plane ready`, `stopped`.
 *
 * With `webhookPort` (and `tls`), it also serves the sidecar-injection admission webhook over
 * HTTPS with its serving certificate (inject/webhook-server.ts).
 */
import { hostname } from 'node:os';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { AdminServer } from '../sidecar/proxy/admin.ts';
import { createLogger } from '../sidecar/proxy/telemetry/logger.ts';
import { startAdminApi } from './api/server.ts';
import { loadOrCreateToken } from './api/tokenFile.ts';
import { startIdentity } from './ca/setup.ts';
import { DiscoveryServer } from './discovery/server.ts';
import { DEFAULT_INJECTOR_CONFIG, type InjectorConfig } from './inject/config.ts';
import { startWebhookServer } from './inject/webhook-server.ts';
import { MeshStateCache } from './mesh/state.ts';
import { instrumentStore, registerControlPlaneMetrics } from './monitoring.ts';
import { watchStoreHealth } from './store/health.ts';
import { openStore } from './store/open.ts';
import { translate } from './translate/translate.ts';

export interface ControlPlaneOptions {
  /** Where the embedded store and the admin token live (created if missing). */
  readonly dataDir: string;
  /** etcd client URLs; when empty the embedded store is used. */
  readonly etcd?: readonly string[];
  readonly address?: string;
  /** Discovery gRPC port (default 15012; 0 picks a free port). */
  readonly grpcPort?: number;
  /** Admin API port (default 15080). */
  readonly adminPort?: number;
  /** Metrics and health port (default 15014). */
  readonly monitoringPort?: number;
  readonly replicaId?: string;
  readonly logLevel?: string;
  /** The mesh CA, TLS on the discovery port and the Identity service (default false: plain text, no CA). */
  readonly tls?: boolean;
  /** Extra SANs (IPs or DNS names) of the control plane's serving certificate. */
  readonly sans?: readonly string[];
  /** Operator CA (PEM files): certificate (root or intermediate), key, chain up to the root. */
  readonly caCertFile?: string;
  readonly caKeyFile?: string;
  readonly caChainFile?: string;
  /** 32-byte key file (raw or hex) sealing the CA key in the store. */
  readonly caEncryptionKeyFile?: string;
  /** Workload certificate TTL, milliseconds (overrides MeshConfig; for tests). */
  readonly certTtlMs?: number;
  /** The sidecar-injection admission webhook (HTTPS, needs `tls`): its port (off when absent; 0 picks one). */
  readonly webhookPort?: number;
  /** What the webhook injects (image, control-plane address, ...); defaults in inject/config.ts. */
  readonly injector?: Partial<InjectorConfig>;
  /** Discovery reconnect grace after start, milliseconds (default 10 000; discovery/server.ts). */
  readonly reconnectGraceMs?: number;
}

/** Runs the control plane until SIGTERM/SIGINT; resolves once it has stopped. */
export async function runControlPlane(options: ControlPlaneOptions): Promise<void> {
  const logger = createLogger(options.logLevel);
  const log = logger.child({ component: 'control-plane' });
  const address = options.address ?? '127.0.0.1';
  const replicaId = options.replicaId ?? `${hostname()}-${process.pid}`;

  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const store = instrumentStore(
    await openStore({
      dataDir: options.dataDir,
      ...(options.etcd && options.etcd.length > 0 && { etcd: [...options.etcd] }),
    }),
    registry,
  );
  log.info({ backend: options.etcd?.length ? 'etcd' : 'embedded', dataDir: options.dataDir }, 'store open');
  const mesh = new MeshStateCache(store);
  await mesh.start();

  const stopHealth = watchStoreHealth(store, { logger, registry });
  // The mesh CA unless --no-tls: its trust bundle in the store turns mesh mTLS on.
  const pki = options.tls
    ? await startIdentity({
        store,
        dataDir: options.dataDir,
        logger,
        registry,
        address,
        ...(options.sans !== undefined && { sans: options.sans }),
        ...(options.caCertFile !== undefined && { caCertFile: options.caCertFile }),
        ...(options.caKeyFile !== undefined && { caKeyFile: options.caKeyFile }),
        ...(options.caChainFile !== undefined && { caChainFile: options.caChainFile }),
        ...(options.caEncryptionKeyFile !== undefined && {
          caEncryptionKeyFile: options.caEncryptionKeyFile,
        }),
        ...(options.certTtlMs !== undefined && { certTtlMs: options.certTtlMs }),
      })
    : undefined;
  registerControlPlaneMetrics(registry, {
    revision: () => mesh.revision,
    ca: pki?.ca,
    serving: pki?.serving,
  });
  const discovery = new DiscoveryServer({
    store,
    snapshotFor: (identity) => translate(mesh.state(), identity),
    replicaId,
    registry,
    logger,
    ...(options.reconnectGraceMs !== undefined && { reconnectGraceMs: options.reconnectGraceMs }),
    ...(pki !== undefined && { credentials: pki.credentials, extraServices: pki.services }),
  });
  const grpcPort = await discovery.start(address, options.grpcPort ?? 15012);
  log.info({ address, port: grpcPort, tls: pki !== undefined }, 'discovery ready');
  const stopWatching = mesh.onChange((revision) => discovery.notify(revision));

  const token = await loadOrCreateToken(options.dataDir);
  const api = await startAdminApi({
    store,
    token,
    mesh,
    address,
    port: options.adminPort ?? 15080,
    logger,
    ...(pki !== undefined && { identity: { ca: pki.ca, tokens: pki.tokens } }),
  });
  log.info({ address, port: api.port }, 'admin api ready');

  if (options.webhookPort !== undefined && pki === undefined)
    throw new Error('the injection webhook (--webhook-port) needs the mesh CA: drop --no-tls');
  const webhook =
    options.webhookPort !== undefined && pki !== undefined
      ? await startWebhookServer({
          address,
          port: options.webhookPort,
          certificate: () => pki.serving.current(),
          config: { ...DEFAULT_INJECTOR_CONFIG, ...options.injector },
          logger,
        })
      : undefined;
  if (webhook !== undefined) log.info({ address, port: webhook.port }, 'webhook ready');

  let stopping = false;
  const monitoring = new AdminServer({
    ready: () => !stopping,
    metrics: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
    configDump: () => ({ replicaId, revision: mesh.revision, proxies: discovery.status() }),
  });
  const monitoringPort = await monitoring.listen(address, options.monitoringPort ?? 15014);
  log.info({ address, port: monitoringPort }, 'monitoring ready');
  log.info({ replicaId, revision: mesh.revision }, 'control plane ready');

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'stopping');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  stopWatching();
  stopHealth();
  await api.close();
  await webhook?.close();
  await discovery.stop();
  await pki?.close();
  await monitoring.close();
  await mesh.close();
  await store.close();
  log.info('stopped');
  logger.flush();
}
