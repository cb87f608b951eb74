/**
 * `weft sidecar`: a sidecar proxy on a static bootstrap file. Loads and checks the config,
 * binds the listeners (outbound 15001, inbound 15006 by convention) and the admin listener
 * (15000), then serves until SIGTERM or SIGINT, when it drains: /ready turns 503, listeners
 * stop accepting and in-flight requests get the drain period to finish.
 *
 * Log lines to look for (JSON on stdout): `listener ready` (name, address, port) per listener,
 * `admin ready` (port), `sidecar ready`, `draining`, `stopped`.
 */

import { AdminServer } from './proxy/admin.ts';
import { loadBootstrap } from './proxy/config/load.ts';
import { proxyConfigOf } from './proxy/config/model.ts';
import { ProxyCore } from './proxy/proxy.ts';
import { createLogger, startAccessLog } from './proxy/telemetry/logger.ts';
import { ProxyMetrics } from './proxy/telemetry/metrics.ts';

export interface SidecarOptions {
  /** Path of the bootstrap YAML/JSON file (`weft.v1.Bootstrap`). */
  readonly configPath: string;
  /** Overrides `admin.port` of the bootstrap (0 picks a free port). */
  readonly adminPort?: number;
  /** Fraction of requests written to the access log, 0..1 (default 0: off). */
  readonly accessLogSampleRate?: number;
  readonly logLevel?: string;
}

/** Runs a sidecar until a termination signal; resolves once it has stopped. */
export async function runSidecar(options: SidecarOptions): Promise<void> {
  const logger = createLogger(options.logLevel);
  const log = logger.child({ component: 'sidecar' });
  const bootstrap = await loadBootstrap(options.configPath);
  const node = bootstrap.node ?? {};
  const service = node.service ?? 'unknown';
  const metrics = new ProxyMetrics({
    service,
    workload: node.workload ?? service,
    namespace: node.namespace ?? 'default',
  });
  const stopAccessLog = startAccessLog(logger, options.accessLogSampleRate ?? 0);
  const proxy = new ProxyCore();
  let draining = false;
  const admin = new AdminServer({
    ready: () => !draining && proxy.version !== '',
    metrics: () => metrics.expose(),
    configDump: () => ({ node, ...proxy.dump() }),
  });
  const adminAddress = bootstrap.admin?.address ?? '127.0.0.1';
  const adminPort = await admin.listen(adminAddress, options.adminPort ?? bootstrap.admin?.port ?? 15000);
  log.info({ address: adminAddress, port: adminPort }, 'admin ready');

  await proxy.apply(proxyConfigOf(bootstrap), 'static');
  for (const l of proxy.listeners()) log.info(l, 'listener ready');
  log.info({ version: proxy.version, node }, 'sidecar ready');

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      if (draining) return;
      draining = true;
      log.info({ signal, inflight: proxy.inflight }, 'draining');
      proxy
        .close()
        .then(() => admin.close())
        .then(resolve, (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          resolve();
        });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  stopAccessLog();
  metrics.close();
  log.info('stopped');
  logger.flush();
}
