/**
 * What the injector adds and the knobs that change it: the injector's own settings (image,
 * control-plane address, secret and ConfigMap names) and the per-pod overrides read from
 * `config.weft.dev/*` annotations of the pod (template).
 *
 * Labels (selectable by a webhook's `namespaceSelector`/`objectSelector`, which cannot select
 * annotations): `weft.dev/inject: enabled | disabled` on a Namespace or a pod (template).
 *
 * Annotations on the pod (template), each optional:
 * | annotation                              | meaning                                             | default                          |
 * | --------------------------------------- | --------------------------------------------------- | -------------------------------- |
 * | `config.weft.dev/service`               | the mesh Service the pod belongs to                 | label `app.kubernetes.io/name`, then `app`, then the workload name |
 * | `config.weft.dev/app-port`              | the app's port (inbound target, on 127.0.0.1)       | the first `containerPort` of the first app container |
 * | `config.weft.dev/inbound-port`          | the sidecar's inbound listener                      | 15006                            |
 * | `config.weft.dev/outbound-port`         | the sidecar's outbound listener (`HTTP_PROXY`)      | 15001                            |
 * | `config.weft.dev/admin-port`            | admin: `/ready` (probes), `/metrics` (Prometheus)   | 15000                            |
 * | `config.weft.dev/proxy-cpu-request`     | sidecar CPU request (Kubernetes quantity)           | 100m                             |
 * | `config.weft.dev/proxy-memory-request`  | sidecar memory request                              | 128Mi                            |
 * | `config.weft.dev/proxy-cpu-limit`       | sidecar CPU limit (`""` or unset: no limit)         | none                             |
 * | `config.weft.dev/proxy-memory-limit`    | sidecar memory limit                                | 256Mi                            |
 * | `config.weft.dev/token-secret`          | Secret holding the join token (key `token`)         | `weft-token-<service>`           |
 * | `config.weft.dev/no-proxy`              | extra `NO_PROXY` entries, comma-separated           | none                             |
 * | `config.weft.dev/log-level`             | sidecar log level                                   | info                             |
 * | `config.weft.dev/capture`               | `explicit` (HTTP_PROXY) or `iptables` (transparent) | explicit                         |
 *
 * Invariants: every value is checked before anything is changed; a bad one is an
 * `InjectionError` naming the resource, the annotation and the reason.
 */

/** The sidecar's container name (also how an injected pod is recognised). */
export const SIDECAR_NAME = 'weft-proxy';
/** The capture init container's name (`config.weft.dev/capture: iptables`). */
export const CAPTURE_NAME = 'weft-capture';
/** The inject label on Namespaces and pods. */
export const INJECT_LABEL = 'weft.dev/inject';
/** Records what was injected (JSON); its presence makes re-injection a no-op. */
export const STATUS_ANNOTATION = 'weft.dev/status';
export const ANNOTATION_PREFIX = 'config.weft.dev/';

export const VOLUME_DATA = 'weft-data';
export const VOLUME_TOKEN = 'weft-token';
export const VOLUME_CA = 'weft-ca';
export const MOUNT_DATA = '/var/run/weft';
export const MOUNT_TOKEN = '/var/run/secrets/weft';
export const MOUNT_CA = '/etc/weft/ca';

/** The injector's settings (flags of `weft inject` and of the control plane's webhook). */
export interface InjectorConfig {
  /** The weft image the sidecar runs, e.g. `ghcr.io/weft-mesh/weft:0.1.0`. */
  readonly image: string;
  /** Discovery address(es) the sidecar dials, `host:port[,host:port]`. */
  readonly controlPlane: string;
  /** ConfigMap (in the pod's namespace) with the mesh trust bundle under key `ca-bundle.pem`. */
  readonly caBundleConfigMap: string;
  /** UID and GID the sidecar runs as (non-root). */
  readonly proxyUid: number;
  /** Image of the capture init container (`capture: iptables`): `sh` and `iptables-restore`. */
  readonly initImage: string;
}

export const DEFAULT_INJECTOR_CONFIG: InjectorConfig = {
  image: 'ghcr.io/weft-mesh/weft:0.1.0',
  controlPlane: 'weft-control-plane.weft-system.svc:15012',
  caBundleConfigMap: 'weft-ca-bundle',
  proxyUid: 1337,
  initImage: 'ghcr.io/weft-mesh/weft-init:0.1.0',
};

/** Per-pod settings after defaults and annotations. */
export interface PodSettings {
  readonly service: string;
  readonly appPort: number;
  readonly inboundPort: number;
  readonly outboundPort: number;
  readonly adminPort: number;
  readonly cpuRequest: string;
  readonly memoryRequest: string;
  readonly cpuLimit: string | undefined;
  readonly memoryLimit: string | undefined;
  readonly tokenSecret: string;
  readonly noProxy: readonly string[];
  readonly logLevel: string;
  /** `explicit`: apps use HTTP_PROXY; `iptables`: an init container redirects their TCP (capture.ts). */
  readonly capture: 'explicit' | 'iptables';
}

/** A manifest or pod the injector refuses: `resource` (e.g. `Deployment shop/api`), `field`, `reason`. */
export class InjectionError extends Error {
  readonly resource: string;
  readonly field: string;
  readonly reason: string;
  constructor(resource: string, field: string, reason: string) {
    super(`${resource}: ${field}: ${reason}`);
    this.name = 'InjectionError';
    this.resource = resource;
    this.field = field;
    this.reason = reason;
  }
}

const QUANTITY = /^[+]?(\d+(\.\d*)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\d+)?$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const LOG_LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']);

/** What settings are derived from: the pod (template)'s metadata and its app containers. */
export interface SettingsSource {
  /** For error messages, e.g. `Deployment shop/api`. */
  readonly resource: string;
  /** The workload's name (fallback service name), if known. */
  readonly workloadName: string | undefined;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  /** `containerPort`s of the app containers, in order. */
  readonly containerPorts: readonly number[];
}

/**
 * Reads the `config.weft.dev/*` annotations over the defaults.
 * @throws InjectionError for an unknown `config.weft.dev/` annotation, a malformed value, or no
 * way to tell the service or the app port.
 */
export function podSettings(src: SettingsSource): PodSettings {
  const a = src.annotations;
  const field = (name: string) => `metadata.annotations["${ANNOTATION_PREFIX}${name}"]`;
  for (const key of Object.keys(a)) {
    if (key.startsWith(ANNOTATION_PREFIX) && !KNOWN.has(key.slice(ANNOTATION_PREFIX.length))) {
      throw new InjectionError(
        src.resource,
        `metadata.annotations["${key}"]`,
        `unknown annotation (known: ${[...KNOWN].map((k) => ANNOTATION_PREFIX + k).join(', ')})`,
      );
    }
  }
  const get = (name: string): string | undefined => a[ANNOTATION_PREFIX + name];
  const port = (name: string, fallback: number | undefined): number | undefined => {
    const raw = get(name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!/^\d+$/.test(raw.trim()) || n < 1 || n > 65535)
      throw new InjectionError(
        src.resource,
        field(name),
        `must be a port 1..65535, got ${JSON.stringify(raw)}`,
      );
    return n;
  };
  const quantity = (name: string, fallback: string | undefined): string | undefined => {
    const raw = get(name);
    if (raw === undefined) return fallback;
    if (raw.trim() === '') return undefined;
    if (!QUANTITY.test(raw.trim()))
      throw new InjectionError(
        src.resource,
        field(name),
        `must be a Kubernetes quantity like 100m, 0.5, 128Mi, got ${JSON.stringify(raw)}`,
      );
    return raw.trim();
  };

  const service =
    get('service') ?? src.labels['app.kubernetes.io/name'] ?? src.labels.app ?? src.workloadName ?? '';
  if (service === '')
    throw new InjectionError(
      src.resource,
      field('service'),
      'cannot tell the service: set this annotation or the label app.kubernetes.io/name or app',
    );
  if (!DNS_LABEL.test(service))
    throw new InjectionError(
      src.resource,
      field('service'),
      `service ${JSON.stringify(service)} must be a DNS label (lower case, digits, "-", at most 63)`,
    );
  const appPort = port('app-port', src.containerPorts[0]);
  if (appPort === undefined)
    throw new InjectionError(
      src.resource,
      field('app-port'),
      'no containerPort on the app containers: set this annotation to the port the app listens on',
    );
  const inboundPort = port('inbound-port', 15006) as number;
  const outboundPort = port('outbound-port', 15001) as number;
  const adminPort = port('admin-port', 15000) as number;
  const ports = { 'app-port': appPort, 'inbound-port': inboundPort, 'outbound-port': outboundPort };
  const seen = new Map<number, string>();
  for (const [name, p] of Object.entries({ ...ports, 'admin-port': adminPort })) {
    const other = seen.get(p);
    if (other !== undefined)
      throw new InjectionError(src.resource, field(name), `port ${p} is also the ${other}`);
    seen.set(p, name);
  }
  const tokenSecret = get('token-secret') ?? `weft-token-${service}`;
  if (!DNS_SUBDOMAIN.test(tokenSecret))
    throw new InjectionError(src.resource, field('token-secret'), 'must be a Secret name (DNS subdomain)');
  const noProxy = (get('no-proxy') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const entry of noProxy) {
    if (/[\s"'$]/.test(entry))
      throw new InjectionError(src.resource, field('no-proxy'), `bad entry ${JSON.stringify(entry)}`);
  }
  const logLevel = get('log-level') ?? 'info';
  if (!LOG_LEVELS.has(logLevel))
    throw new InjectionError(
      src.resource,
      field('log-level'),
      `must be one of ${[...LOG_LEVELS].join(', ')}`,
    );
  const capture = get('capture') ?? 'explicit';
  if (capture !== 'explicit' && capture !== 'iptables')
    throw new InjectionError(src.resource, field('capture'), 'must be "explicit" or "iptables"');
  return {
    capture,
    service,
    appPort,
    inboundPort,
    outboundPort,
    adminPort,
    cpuRequest: quantity('proxy-cpu-request', '100m') ?? '100m',
    memoryRequest: quantity('proxy-memory-request', '128Mi') ?? '128Mi',
    cpuLimit: quantity('proxy-cpu-limit', undefined),
    memoryLimit: quantity('proxy-memory-limit', '256Mi'),
    tokenSecret,
    noProxy,
    logLevel,
  };
}

const KNOWN = new Set([
  'service',
  'app-port',
  'inbound-port',
  'outbound-port',
  'admin-port',
  'proxy-cpu-request',
  'proxy-memory-request',
  'proxy-cpu-limit',
  'proxy-memory-limit',
  'token-secret',
  'no-proxy',
  'log-level',
  'capture',
]);
