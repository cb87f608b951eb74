/**
 * `weft run --service NAME --app-port PORT [options] -- COMMAND [ARGS...]`: runs COMMAND beside a
 * sidecar fed by the control plane (sidecar/beside.ts): the app starts once the sidecar is ready,
 * with `HTTP_PROXY` on the outbound listener; signals go to the app; when it exits the sidecar
 * deregisters and drains; the exit code is the app's. Exit 1 when the sidecar cannot become
 * ready, 2 on bad usage.
 */
import { type Command, InvalidArgumentError } from 'commander';
import { runBeside } from '../../../sidecar/beside.ts';

function port(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 0 || n > 65535) throw new InvalidArgumentError('must be a port 0..65535');
  return n;
}

function positive(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive whole number');
  return n;
}

interface RunFlags {
  service: string;
  appPort: number;
  controlPlane: string;
  namespace: string;
  workload?: string;
  labels?: string[];
  caBundle?: string;
  token?: string;
  tokenFile?: string;
  outboundPort: number;
  inboundPort: number;
  adminPort: number;
  listenAddress: string;
  proxyId?: string;
  dataDir: string;
  drainDelay?: number;
  logLevel: string;
  readyTimeout: number;
}

export function registerRunApp(program: Command): void {
  program
    .command('run')
    .description('run a command beside a sidecar: weft run --service api --app-port 8080 -- node server.js')
    .argument('<command...>', 'the app and its arguments (after --)')
    .requiredOption('--service <name>', 'the Service the app belongs to')
    .requiredOption('--app-port <port>', 'the port the app listens on (127.0.0.1)', port)
    .option('--control-plane <host:port,...>', 'control-plane discovery address(es)', '127.0.0.1:15012')
    .option('-n, --namespace <ns>', 'namespace', 'default')
    .option('--workload <name>', 'workload name (default: the service)')
    .option(
      '--labels <k=v,...>',
      'endpoint labels, e.g. version=v1 (repeatable)',
      (v: string, p: string[] = []) => [...p, v],
    )
    .option('--ca-bundle <file>', 'mTLS: the mesh trust bundle (e.g. .weft/ca-bundle.pem)')
    .option('--token <token>', 'mTLS: join token (env WEFT_JOIN_TOKEN)')
    .option('--token-file <file>', 'mTLS: read the join token from a file')
    .option('--outbound-port <port>', 'outbound listener port (HTTP_PROXY)', port, 15001)
    .option('--inbound-port <port>', 'inbound listener port (peers reach the app here)', port, 15006)
    .option('--admin-port <port>', 'sidecar admin port', port, 15000)
    .option('--listen-address <ip>', 'address the listeners bind and peers dial', '127.0.0.1')
    .option('--proxy-id <id>', 'stable proxy id (default <workload>-<inbound port>.<namespace>)')
    .option('--data-dir <dir>', 'where the sidecar keeps its last config and certificate', '.weft/sidecars')
    .option('--drain-delay <ms>', 'after deregistering, keep serving this long before draining', positive)
    .option('--log-level <level>', 'sidecar log level', 'info')
    .option('--ready-timeout <ms>', 'give up when the sidecar is not ready after this long', positive, 60_000)
    .action(async (command: string[], opts: RunFlags) => {
      const args = [
        `--control-plane=${opts.controlPlane}`,
        `--service=${opts.service}`,
        `--namespace=${opts.namespace}`,
        `--app-port=${opts.appPort}`,
        `--outbound-port=${opts.outboundPort}`,
        `--inbound-port=${opts.inboundPort}`,
        `--admin-port=${opts.adminPort}`,
        `--listen-address=${opts.listenAddress}`,
        `--data-dir=${opts.dataDir}`,
        `--log-level=${opts.logLevel}`,
        ...(opts.workload !== undefined ? [`--workload=${opts.workload}`] : []),
        ...(opts.labels ?? []).map((l) => `--labels=${l}`),
        ...(opts.caBundle !== undefined ? [`--ca-bundle=${opts.caBundle}`] : []),
        ...(opts.tokenFile !== undefined ? [`--token-file=${opts.tokenFile}`] : []),
        ...(opts.proxyId !== undefined ? [`--proxy-id=${opts.proxyId}`] : []),
        ...(opts.drainDelay !== undefined ? [`--drain-delay=${opts.drainDelay}`] : []),
      ];
      // The token reaches the sidecar by environment (not its command line); the app never sees it.
      if (opts.token !== undefined) process.env.WEFT_JOIN_TOKEN = opts.token;
      const code = await runBeside({
        sidecarArgs: args,
        outboundPort: opts.outboundPort,
        service: opts.service,
        command,
        readyTimeoutMs: opts.readyTimeout,
      });
      process.exit(code);
    });
}
