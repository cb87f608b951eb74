/**
 * `weft gateway`: the edge gateway role (gateway/run.ts), on a bootstrap file (`--config`) or fed
 * by the control plane (`--control-plane HOST:PORT --gateway NAME`). Its code is imported only
 * when the role runs.
 */
import { readFile } from 'node:fs/promises';
import { type Command, InvalidArgumentError } from 'commander';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('must be a port 0..65535');
  return n;
}

function milliseconds(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a whole number of milliseconds');
  return n;
}

/** `GATEWAY_PORT=BIND_PORT` (repeatable) → record. */
function portMapping(value: string, previous: Record<string, number> = {}): Record<string, number> {
  const m = /^(\d+)=(\d+)$/.exec(value.trim());
  const from = Number(m?.[1]);
  const to = Number(m?.[2]);
  if (m === null || from < 1 || from > 65535 || to > 65535) {
    throw new InvalidArgumentError(`"${value}" is not GATEWAY_PORT=BIND_PORT (ports 1..65535 = 0..65535)`);
  }
  return { ...previous, [String(from)]: to };
}

interface GatewayFlags {
  config?: string;
  controlPlane?: string;
  gateway?: string;
  namespace: string;
  listenAddress: string;
  port?: Record<string, number>;
  proxyId?: string;
  dataDir: string;
  certDir?: string;
  cert?: string;
  key?: string;
  adminPort?: number;
  drainDelay: number;
  accessLog?: boolean;
  logLevel: string;
  caBundle?: string;
  token?: string;
  tokenFile?: string;
}

export function registerGatewayCommand(program: Command): void {
  program
    .command('gateway')
    .description(
      'run the edge gateway: on a bootstrap file (--config) or fed by the control plane (--control-plane)',
    )
    .option('-c, --config <file>', 'static bootstrap file (weft.v1.Bootstrap, YAML or JSON)')
    .option('--control-plane <host:port,...>', 'control-plane discovery address(es)')
    .option(
      '--gateway <name>',
      'the Gateway resource to serve (control-plane mode; also its service account)',
    )
    .option('-n, --namespace <ns>', "the Gateway's namespace", 'default')
    .option('--listen-address <ip>', 'address the gateway listeners bind', '127.0.0.1')
    .option(
      '--port <gatewayPort=bindPort>',
      'bind a Gateway listener port elsewhere, e.g. 443=8443 (0: any free port; repeatable). Default: ports >= 1024 as is, lower ones + 10000',
      portMapping,
    )
    .option('--proxy-id <id>', 'stable proxy id (default gateway-<name>.<namespace>)')
    .option('--data-dir <dir>', 'where the last ACKed config and the SVID are kept', '.weft/gateways')
    .option('--cert-dir <dir>', 'HTTPS server certificates: <dir>/<certificateRef name>.crt and .key (PEM)')
    .option('--cert <file>', 'static mode: the gateway mesh SVID certificate chain (PEM)')
    .option('--key <file>', 'static mode: the private key of --cert (PEM)')
    .option('--admin-port <port>', 'admin listener port (default 15000)', port)
    .option('--drain-delay <ms>', 'on SIGTERM, keep serving this long before draining', milliseconds, 1000)
    .option('--access-log', 'write an access log line for every request')
    .option('--log-level <level>', 'pino log level', 'info')
    .option('--ca-bundle <file>', 'mTLS: the control plane CA bundle (e.g. .weft/ca-bundle.pem)')
    .option('--token <token>', 'mTLS: join token for the first certificate (env WEFT_JOIN_TOKEN)')
    .option('--token-file <file>', 'mTLS: read the join token from a file')
    .action(async (opts: GatewayFlags, cmd: Command) => {
      if (opts.config === undefined && opts.controlPlane === undefined) {
        cmd.error('either --config <file> or --control-plane <host:port> is required');
      }
      if (opts.config === undefined && opts.gateway === undefined)
        cmd.error('--control-plane needs --gateway');
      if ((opts.cert === undefined) !== (opts.key === undefined)) cmd.error('--cert and --key go together');
      if (opts.cert !== undefined && opts.config === undefined) cmd.error('--cert/--key need --config');
      if (opts.caBundle !== undefined && opts.config !== undefined)
        cmd.error('--ca-bundle goes with --control-plane');
      let token = opts.token ?? process.env.WEFT_JOIN_TOKEN;
      if (opts.tokenFile !== undefined) token = (await readFile(opts.tokenFile, 'utf8')).trim();
      const { runGateway } = await import('../../../gateway/run.ts');
      await runGateway({
        ...(opts.config !== undefined && { configPath: opts.config }),
        ...(opts.config === undefined && {
          dynamic: {
            controlPlane: opts.controlPlane as string,
            gateway: opts.gateway as string,
            namespace: opts.namespace,
            listenAddress: opts.listenAddress,
            ...(opts.port !== undefined && { listenerPorts: opts.port }),
            ...(opts.proxyId !== undefined && { proxyId: opts.proxyId }),
            dataDir: opts.dataDir,
            ...(opts.caBundle !== undefined && { caBundlePath: opts.caBundle }),
            ...(token !== undefined && { token }),
          },
        }),
        ...(opts.certDir !== undefined && { certDir: opts.certDir }),
        ...(opts.cert !== undefined && { certPath: opts.cert }),
        ...(opts.key !== undefined && { keyPath: opts.key }),
        ...(opts.adminPort !== undefined && { adminPort: opts.adminPort }),
        drainDelayMs: opts.drainDelay,
        accessLogSampleRate: opts.accessLog ? 1 : 0,
        logLevel: opts.logLevel,
      });
    });
}
