/**
 * Sidecar injection into one pod (template): the pure core shared by `weft inject` and the
 * admission webhook. Input and output are plain Kubernetes objects (`IPodTemplateSpec`); the input
 * is never mutated.
 *
 * What is added (Kubernetes native sidecars,
 * https://kubernetes.io/docs/concepts/workloads/pods/sidecar-containers/):
 * - `initContainers[0]` = `weft-proxy` with `restartPolicy: Always`: it starts before the other
 *   init containers and the app, a `startupProbe` on the admin `/ready` (200 only once the first
 *   config is applied, sidecar/proxy/admin.ts) holds the app until the mesh is ready, and it stops
 *   after the app (a Job completes normally). Args: `weft sidecar --control-plane ...` in dynamic
 *   mode with `--proxy-id $(POD_NAME).$(POD_NAMESPACE)`; the inbound listener and the admin
 *   listener (kubelet probes, Prometheus) bind the pod IP and the inbound one is registered as the
 *   endpoint; the outbound listener binds 127.0.0.1 only (`--outbound-address`), so no other pod
 *   can use this pod's identity through it.
 *   Resources (requests, memory limit), a restricted security context (non-root UID, read-only
 *   root file system, no privilege escalation, all capabilities dropped, RuntimeDefault seccomp).
 * - Volumes: `weft-data` (emptyDir: last ACKed snapshot and SVID), `weft-token` (the Secret with
 *   the join token, key `token`), `weft-ca` (the ConfigMap with the mesh trust bundle).
 * - In every app container: `HTTP_PROXY`/`http_proxy` to the outbound listener, `NO_PROXY`/
 *   `no_proxy` for local and API-server traffic, `NODE_USE_ENV_PROXY=1` (Node's fetch and http
 *   honour the proxy variables with it).
 * - With `config.weft.dev/capture: iptables`: no proxy variables; instead the `weft-capture` init
 *   container (after the sidecar, before the app's own init containers) installs transparent
 *   capture rules (capture.ts).
 * - Annotations: `weft.dev/status` (what was injected) and Prometheus scrape hints (only when the
 *   pod has none).
 *
 * Invariants: idempotent (a pod with the status annotation or a `weft-proxy` container is
 * returned unchanged); `weft.dev/inject: disabled` on the pod is always respected; nothing of the
 * user's containers is removed or reordered.
 */
import type { IObjectMeta } from '@kubernetes-models/apimachinery/apis/meta/v1/ObjectMeta';
import type { IContainer, IEnvVar, IPodTemplateSpec, IVolume } from 'kubernetes-models/v1';
import { captureRules } from './capture.ts';
import {
  CAPTURE_NAME,
  INJECT_LABEL,
  type InjectorConfig,
  MOUNT_CA,
  MOUNT_DATA,
  MOUNT_TOKEN,
  type PodSettings,
  podSettings,
  SIDECAR_NAME,
  STATUS_ANNOTATION,
  VOLUME_CA,
  VOLUME_DATA,
  VOLUME_TOKEN,
} from './config.ts';

/** The result for one pod (template). */
export type PodInjection =
  | { readonly result: 'injected'; readonly template: IPodTemplateSpec; readonly settings: PodSettings }
  | { readonly result: 'skipped'; readonly reason: 'already-injected' | 'disabled' | 'not-selected' };

export interface PodContext {
  /** For error messages, e.g. `Deployment shop/api`. */
  readonly resource: string;
  /** The owning workload's name (fallback service name). */
  readonly workloadName: string | undefined;
  /**
   * The namespace's `weft.dev/inject` label when known. `disabled` skips the pod unless the pod
   * itself says `enabled`; with `requireOptIn` only an `enabled` here or on the pod injects.
   */
  readonly namespaceInject?: string | undefined;
  /** Inject only pods that opted in (pod or namespace label `enabled`); `weft inject` does not need it. */
  readonly requireOptIn?: boolean;
}

/** Decides and injects. @throws InjectionError for bad `config.weft.dev/*` values or no app port. */
export function injectPodTemplate(
  template: IPodTemplateSpec,
  config: InjectorConfig,
  ctx: PodContext,
): PodInjection {
  const meta = template.metadata ?? {};
  const spec = template.spec;
  const labels = meta.labels ?? {};
  const annotations = meta.annotations ?? {};
  const podLabel = labels[INJECT_LABEL];
  if (podLabel === 'disabled') return { result: 'skipped', reason: 'disabled' };
  if (podLabel !== 'enabled' && ctx.namespaceInject === 'disabled')
    return { result: 'skipped', reason: 'disabled' };
  if (ctx.requireOptIn && podLabel !== 'enabled' && ctx.namespaceInject !== 'enabled')
    return { result: 'skipped', reason: 'not-selected' };
  if (spec === undefined) return { result: 'skipped', reason: 'not-selected' };
  const all = [...(spec.initContainers ?? []), ...spec.containers];
  if (annotations[STATUS_ANNOTATION] !== undefined || all.some((c) => c.name === SIDECAR_NAME))
    return { result: 'skipped', reason: 'already-injected' };

  const settings = podSettings({
    resource: ctx.resource,
    workloadName: ctx.workloadName,
    labels,
    annotations,
    containerPorts: spec.containers.flatMap((c) => (c.ports ?? []).map((p) => p.containerPort)),
  });
  const volumes = sidecarVolumes(config, settings);
  const newMeta: IObjectMeta = {
    ...meta,
    annotations: {
      ...annotations,
      ...prometheusAnnotations(annotations, settings),
      [STATUS_ANNOTATION]: JSON.stringify({
        initContainers: settings.capture === 'iptables' ? [SIDECAR_NAME, CAPTURE_NAME] : [SIDECAR_NAME],
        volumes: volumes.map((v) => v.name),
        service: settings.service,
        image: config.image,
      }),
    },
  };
  return {
    result: 'injected',
    settings,
    template: {
      ...template,
      metadata: newMeta,
      spec: {
        ...spec,
        initContainers: [
          sidecarContainer(config, settings),
          ...(settings.capture === 'iptables' ? [captureContainer(config, settings)] : []),
          ...(spec.initContainers ?? []),
        ],
        containers:
          settings.capture === 'iptables'
            ? spec.containers
            : spec.containers.map((c) => withProxyEnv(c, settings)),
        volumes: [...(spec.volumes ?? []), ...volumes],
      },
    },
  };
}

function prometheusAnnotations(existing: Record<string, string>, s: PodSettings): Record<string, string> {
  if (Object.keys(existing).some((k) => k.startsWith('prometheus.io/'))) return {};
  return {
    'prometheus.io/scrape': 'true',
    'prometheus.io/port': String(s.adminPort),
    'prometheus.io/path': '/metrics',
  };
}

/** The native sidecar container. */
export function sidecarContainer(config: InjectorConfig, s: PodSettings): IContainer {
  const probe = (path: string, periodSeconds: number, failureThreshold: number) => ({
    httpGet: { path, port: s.adminPort },
    periodSeconds,
    timeoutSeconds: 1,
    failureThreshold,
  });
  return {
    name: SIDECAR_NAME,
    image: config.image,
    imagePullPolicy: 'IfNotPresent',
    restartPolicy: 'Always',
    args: [
      'sidecar',
      `--control-plane=${config.controlPlane}`,
      `--service=${s.service}`,
      '--namespace=$(POD_NAMESPACE)',
      '--proxy-id=$(POD_NAME).$(POD_NAMESPACE)',
      `--app-port=${s.appPort}`,
      `--inbound-port=${s.inboundPort}`,
      `--outbound-port=${s.outboundPort}`,
      '--listen-address=$(POD_IP)',
      '--outbound-address=127.0.0.1',
      '--admin-address=$(POD_IP)',
      `--admin-port=${s.adminPort}`,
      `--data-dir=${MOUNT_DATA}`,
      `--ca-bundle=${MOUNT_CA}/ca-bundle.pem`,
      `--token-file=${MOUNT_TOKEN}/token`,
      `--log-level=${s.logLevel}`,
    ],
    env: [
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    ],
    ports: [
      { name: 'weft-inbound', containerPort: s.inboundPort, protocol: 'TCP' },
      { name: 'weft-admin', containerPort: s.adminPort, protocol: 'TCP' },
    ],
    // Up to 2 minutes for the first config; then readiness follows /ready (503 while draining).
    startupProbe: probe('/ready', 1, 120),
    readinessProbe: probe('/ready', 5, 3),
    livenessProbe: probe('/healthz', 10, 3),
    resources: {
      requests: { cpu: s.cpuRequest, memory: s.memoryRequest },
      ...((s.cpuLimit !== undefined || s.memoryLimit !== undefined) && {
        limits: {
          ...(s.cpuLimit !== undefined && { cpu: s.cpuLimit }),
          ...(s.memoryLimit !== undefined && { memory: s.memoryLimit }),
        },
      }),
    },
    securityContext: {
      runAsNonRoot: true,
      runAsUser: config.proxyUid,
      runAsGroup: config.proxyUid,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts: [
      { name: VOLUME_DATA, mountPath: MOUNT_DATA },
      { name: VOLUME_TOKEN, mountPath: MOUNT_TOKEN, readOnly: true },
      { name: VOLUME_CA, mountPath: MOUNT_CA, readOnly: true },
    ],
  };
}

/**
 * The capture init container (`config.weft.dev/capture: iptables`): installs capture.ts's rules
 * with `iptables-restore` (needs NET_ADMIN and NET_RAW, so the namespace's Pod Security level must
 * allow them), then exits; it runs after the sidecar has started, before the app.
 */
export function captureContainer(config: InjectorConfig, s: PodSettings): IContainer {
  const rules = captureRules({
    inboundPort: s.inboundPort,
    outboundPort: s.outboundPort,
    adminPort: s.adminPort,
    proxyUid: config.proxyUid,
  });
  return {
    name: CAPTURE_NAME,
    image: config.initImage,
    imagePullPolicy: 'IfNotPresent',
    command: ['sh', '-c', 'printf "%s" "$WEFT_CAPTURE_RULES" | iptables-restore'],
    env: [{ name: 'WEFT_CAPTURE_RULES', value: rules }],
    resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { memory: '64Mi' } },
    securityContext: {
      runAsUser: 0,
      runAsNonRoot: false,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ['ALL'], add: ['NET_ADMIN', 'NET_RAW'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
  };
}

function sidecarVolumes(config: InjectorConfig, s: PodSettings): IVolume[] {
  return [
    { name: VOLUME_DATA, emptyDir: { sizeLimit: '64Mi' } },
    { name: VOLUME_TOKEN, secret: { secretName: s.tokenSecret, defaultMode: 0o440 } },
    {
      name: VOLUME_CA,
      configMap: { name: config.caBundleConfigMap, items: [{ key: 'ca-bundle.pem', path: 'ca-bundle.pem' }] },
    },
  ];
}

/** The proxy variables for an app container (its own values for the same names win). */
function withProxyEnv(container: IContainer, s: PodSettings): IContainer {
  const own = new Set((container.env ?? []).map((e) => e.name));
  const proxyUrl = `http://127.0.0.1:${s.outboundPort}`;
  const noProxy = [
    'localhost',
    '127.0.0.1',
    '::1',
    '$(KUBERNETES_SERVICE_HOST)',
    'kubernetes.default.svc',
    ...s.noProxy,
  ].join(',');
  const added: IEnvVar[] = [
    { name: 'HTTP_PROXY', value: proxyUrl },
    { name: 'http_proxy', value: proxyUrl },
    { name: 'NO_PROXY', value: noProxy },
    { name: 'no_proxy', value: noProxy },
    { name: 'NODE_USE_ENV_PROXY', value: '1' },
  ].filter((e) => !own.has(e.name));
  if (added.length === 0) return container;
  // Ours go first: Kubernetes expands $(VAR) only from variables defined earlier in the list.
  return { ...container, env: [...added, ...(container.env ?? [])] };
}
