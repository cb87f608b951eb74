/**
 * The long-running roles of the `weft` binary: `weft sidecar` (static bootstrap or fed by the
 * control plane) and `weft control-plane`. Ports default to the mesh's conventions (sidecar
 * admin 15000, outbound 15001, inbound 15006; control plane discovery 15012, monitoring 15014,
 * admin API 15080). Each role's code is imported only when that role runs, so a sidecar never
 * loads the control plane.
 */
import { readFile } from 'node:fs/promises';
import { type Command, InvalidArgumentError } from 'commander';
import { parseTcpUpstream, type TcpUpstreamFlag } from '../../../sidecar/agent/tcp-upstreams.ts';
import { parseDurationMs } from '../../resources/duration.ts';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('must be a port 0..65535');
  return n;
}

function fraction(value: string): number {
  const n = Number(value);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError('must be a number from 0 to 1');
  return n;
}

function milliseconds(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a whole number of milliseconds');
  return n;
}

/** Repeatable string flag. */
function collectList(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** A GEP-2257 duration (`5s`, `24h`) → milliseconds (> 0). */
function gepMs(value: string): number {
  let ms = 0;
  try {
    ms = parseDurationMs(value);
  } catch {
    // reported below
  }
  if (!(ms > 0)) throw new InvalidArgumentError('must be a positive duration like 5s, 10m or 24h');
  return ms;
}

/** `--upstream service[.ns]:port=localPort` (repeatable). */
function tcpUpstream(value: string, previous: TcpUpstreamFlag[] = []): TcpUpstreamFlag[] {
  try {
    return [...previous, parseTcpUpstream(value)];
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** `k=v,k2=v2` → record (repeatable). */
function labels(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const out = { ...previous };
  for (const pair of value.split(',')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new InvalidArgumentError(`"${pair}" is not key=value`);
    out[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return out;
}

interface SidecarFlags {
  config?: string;
  controlPlane?: string;
  service?: string;
  namespace: string;
  workload?: string;
  labels?: Record<string, string>;
  appPort?: number;
  upstream?: TcpUpstreamFlag[];
  outboundPort: number;
  inboundPort: number;
  listenAddress: string;
  outboundAddress?: string;
  advertiseAddress?: string;
  proxyId?: string;
  dataDir: string;
  adminPort?: number;
  adminAddress?: string;
  drainDelay: number;
  accessLog?: boolean;
  accessLogSampleRate?: number;
  otlpEndpoint?: string;
  traceSampleRate?: number;
  logLevel: string;
  cert?: string;
  caBundle?: string;
  token?: string;
  tokenFile?: string;
  key?: string;
}

export function registerRunCommands(program: Command): void {
  program
    .command('sidecar')
    .description(
      'run a sidecar proxy: on a bootstrap file (--config) or fed by the control plane (--control-plane)',
    )
    .option('-c, --config <file>', 'static bootstrap file (weft.v1.Bootstrap, YAML or JSON)')
    .option(
      '--control-plane <host:port,...>',
      'control-plane discovery address, or several replicas tried in turn, e.g. 127.0.0.1:15012,127.0.0.1:25012',
    )
    .option('--service <name>', 'the Service this workload belongs to (control-plane mode)')
    .option('-n, --namespace <ns>', 'namespace', 'default')
    .option('--workload <name>', 'workload name (default: the service)')
    .option('--labels <k=v,...>', 'endpoint labels, e.g. version=v1 (repeatable)', labels)
    .option('--app-port <port>', 'the local app port on 127.0.0.1 (control-plane mode)', port)
    .option(
      '--upstream <service[.ns]:port=localPort>',
      'a local bind for a TCP Service port, e.g. store-db:6379=16379 (repeatable; control-plane mode)',
      tcpUpstream,
    )
    .option('--outbound-port <port>', 'outbound listener port', port, 15001)
    .option('--inbound-port <port>', 'inbound listener port', port, 15006)
    .option('--listen-address <ip>', 'address the listeners bind', '127.0.0.1')
    .option(
      '--outbound-address <ip>',
      'address the outbound listener binds instead (e.g. 127.0.0.1 beside a pod IP)',
    )
    .option(
      '--advertise-address <host>',
      'address peers dial, registered as the endpoint (default --listen-address)',
    )
    .option('--proxy-id <id>', 'stable proxy id (default <workload>-<inbound port>.<namespace>)')
    .option('--data-dir <dir>', 'where the last ACKed config is kept', '.weft/sidecars')
    .option('--admin-port <port>', 'admin listener port (default 15000)', port)
    .option(
      '--admin-address <ip>',
      'address the admin listener binds (default 127.0.0.1; the pod IP for kubelet probes)',
    )
    .option(
      '--drain-delay <ms>',
      'after deregistering, keep serving this long before draining',
      milliseconds,
      1000,
    )
    .option('--access-log', 'write an access log line for every request')
    .option('--access-log-sample-rate <rate>', 'fraction of requests to access-log, 0..1', fraction)
    .option(
      '--otlp-endpoint <url>',
      'export spans of sampled traces over OTLP/HTTP JSON, e.g. http://127.0.0.1:4318/v1/traces',
    )
    .option(
      '--trace-sample-rate <rate>',
      'share of traces started here that are sampled, 0..1 (default 0)',
      fraction,
    )
    .option('--log-level <level>', 'pino log level', 'info')
    .option('--cert <file>', 'static mode: the proxy SVID certificate chain (PEM); SIGHUP reloads it')
    .option('--key <file>', 'static mode: the private key of --cert (PEM)')
    .option('--ca-bundle <file>', 'mTLS: the control plane CA bundle (e.g. .weft/ca-bundle.pem)')
    .option('--token <token>', 'mTLS: join token for the first certificate (env WEFT_JOIN_TOKEN)')
    .option('--token-file <file>', 'mTLS: read the join token from a file')
    .action(async (opts: SidecarFlags, cmd: Command) => {
      if (opts.config === undefined && opts.controlPlane === undefined) {
        cmd.error('either --config <file> or --control-plane <host:port> is required');
      }
      if ((opts.cert === undefined) !== (opts.key === undefined)) cmd.error('--cert and --key go together');
      if (opts.cert !== undefined && opts.config === undefined) cmd.error('--cert/--key need --config');
      if (opts.config === undefined && (opts.service === undefined || opts.appPort === undefined)) {
        cmd.error('--control-plane needs --service and --app-port');
      }
      let token = opts.token ?? process.env.WEFT_JOIN_TOKEN;
      if (opts.tokenFile !== undefined) token = (await readFile(opts.tokenFile, 'utf8')).trim();
      if (opts.caBundle !== undefined && opts.config !== undefined)
        cmd.error('--ca-bundle goes with --control-plane');
      const { runSidecar } = await import('../../../sidecar/run.ts');
      await runSidecar({
        ...(opts.config !== undefined && { configPath: opts.config }),
        ...(opts.config === undefined && {
          dynamic: {
            controlPlane: opts.controlPlane as string,
            service: opts.service as string,
            namespace: opts.namespace,
            ...(opts.workload !== undefined && { workload: opts.workload }),
            ...(opts.labels !== undefined && { labels: opts.labels }),
            appPort: opts.appPort as number,
            ...(opts.upstream !== undefined && { tcpUpstreams: opts.upstream }),
            outboundPort: opts.outboundPort,
            inboundPort: opts.inboundPort,
            listenAddress: opts.listenAddress,
            ...(opts.outboundAddress !== undefined && { outboundAddress: opts.outboundAddress }),
            ...(opts.advertiseAddress !== undefined && { advertiseAddress: opts.advertiseAddress }),
            ...(opts.proxyId !== undefined && { proxyId: opts.proxyId }),
            dataDir: opts.dataDir,
            ...(opts.caBundle !== undefined && { caBundlePath: opts.caBundle }),
            ...(token !== undefined && { token }),
          },
        }),
        ...(opts.adminPort !== undefined && { adminPort: opts.adminPort }),
        ...(opts.adminAddress !== undefined && { adminAddress: opts.adminAddress }),
        ...(opts.cert !== undefined && { certPath: opts.cert }),
        ...(opts.key !== undefined && { keyPath: opts.key }),
        drainDelayMs: opts.drainDelay,
        accessLogSampleRate: opts.accessLogSampleRate ?? (opts.accessLog ? 1 : 0),
        ...(opts.otlpEndpoint !== undefined && { otlpEndpoint: opts.otlpEndpoint }),
        ...(opts.traceSampleRate !== undefined && { traceSampleRate: opts.traceSampleRate }),
        logLevel: opts.logLevel,
      });
    });

  program
    .command('control-plane')
    .description('run the control plane: store, discovery (gRPC), admin API, monitoring')
    .option('--data-dir <dir>', 'embedded store and admin token location', '.weft')
    .option('--etcd <urls>', 'comma-separated etcd client URLs (default: the embedded store)')
    .option('--address <ip>', 'address to bind', '127.0.0.1')
    .option('--grpc-port <port>', 'discovery port', port, 15012)
    .option('--admin-port <port>', 'admin API port', port, 15080)
    .option('--monitoring-port <port>', 'metrics and health port', port, 15014)
    .option('--replica-id <id>', 'this replica id (default <hostname>-<pid>)')
    .option('--log-level <level>', 'pino log level', 'info')
    .option('--tls', 'the mesh CA on: TLS discovery and the Identity service (the default)')
    .option('--no-tls', 'no CA: plain-text discovery and plain-text sidecars (tests, local debugging)')
    .option(
      '--san <name>',
      'extra SAN of the discovery certificate, IP or DNS name (repeatable)',
      collectList,
    )
    .option('--ca-cert <file>', 'operator CA certificate, root or intermediate (PEM; with --ca-key)')
    .option('--ca-key <file>', 'private key of --ca-cert (PEM, RSA)')
    .option('--ca-chain <file>', 'issuers of an intermediate --ca-cert up to the root (PEM)')
    .option('--ca-encryption-key-file <file>', '32-byte key (raw or hex) encrypting the CA key at rest')
    .option('--cert-ttl <duration>', 'workload certificate lifetime, e.g. 5s (overrides MeshConfig)', gepMs)
    .option(
      '--webhook-port <port>',
      'serve the sidecar-injection admission webhook (HTTPS) on this port, e.g. 15017',
      port,
    )
    .option('--inject-image <image>', 'webhook: the weft image injected sidecars run')
    .option('--inject-control-plane <host:port>', 'webhook: the discovery address injected sidecars dial')
    .option(
      '--reconnect-grace <duration>',
      'after start, how long proxies that run a config keep it before the first push (default 10s)',
      gepMs,
    )
    .action(
      async (
        opts: {
          dataDir: string;
          etcd?: string;
          address: string;
          grpcPort: number;
          adminPort: number;
          monitoringPort: number;
          replicaId?: string;
          logLevel: string;
          tls?: boolean;
          san?: string[];
          caCert?: string;
          caKey?: string;
          caChain?: string;
          caEncryptionKeyFile?: string;
          certTtl?: number;
          webhookPort?: number;
          injectImage?: string;
          injectControlPlane?: string;
          reconnectGrace?: number;
        },
        cmd: Command,
      ) => {
        const needTls = [
          opts.san,
          opts.caCert,
          opts.caKey,
          opts.caChain,
          opts.caEncryptionKeyFile,
          opts.certTtl,
        ];
        if (opts.tls === false && needTls.some((v) => v !== undefined)) {
          cmd.error(
            '--san, --ca-cert, --ca-key, --ca-chain, --ca-encryption-key-file and --cert-ttl do not go with --no-tls',
          );
        }
        const { runControlPlane } = await import('../../run.ts');
        await runControlPlane({
          dataDir: opts.dataDir,
          etcd: opts.etcd ? opts.etcd.split(',').map((u) => u.trim()) : [],
          address: opts.address,
          grpcPort: opts.grpcPort,
          adminPort: opts.adminPort,
          monitoringPort: opts.monitoringPort,
          ...(opts.replicaId !== undefined && { replicaId: opts.replicaId }),
          logLevel: opts.logLevel,
          tls: opts.tls !== false,
          ...(opts.san !== undefined && { sans: opts.san }),
          ...(opts.caCert !== undefined && { caCertFile: opts.caCert }),
          ...(opts.caKey !== undefined && { caKeyFile: opts.caKey }),
          ...(opts.caChain !== undefined && { caChainFile: opts.caChain }),
          ...(opts.caEncryptionKeyFile !== undefined && { caEncryptionKeyFile: opts.caEncryptionKeyFile }),
          ...(opts.certTtl !== undefined && { certTtlMs: opts.certTtl }),
          ...(opts.webhookPort !== undefined && { webhookPort: opts.webhookPort }),
          injector: {
            ...(opts.injectImage !== undefined && { image: opts.injectImage }),
            ...(opts.injectControlPlane !== undefined && { controlPlane: opts.injectControlPlane }),
          },
          ...(opts.reconnectGrace !== undefined && { reconnectGraceMs: opts.reconnectGrace }),
        });
      },
    );
}
