/**
 * deploy/kubernetes: the kustomize base and every overlay are built here (the subset of kustomize
 * they use: `resources`, `namespace`, `labels`, `images`, and RFC 6902 `patches` with a
 * kind/name target — any other field fails the test, so nothing is skipped silently; kustomize
 * itself is not installed on these machines), and every object is checked against the typed
 * Kubernetes schema (kubernetes-models) and for the wiring between objects: Services select
 * pods and name their ports, PodDisruptionBudgets select pods, the webhook points at a Service
 * port, probes and Prometheus annotations name declared ports.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import jsonPatch, { type Operation } from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { schemaProblems } from '../../../control-plane/inject/models.ts';

const ROOT = fileURLToPath(new URL('../../../deploy/kubernetes/', import.meta.url));
const SUPPORTED = new Set(['apiVersion', 'kind', 'resources', 'namespace', 'labels', 'images', 'patches']);
const CLUSTER_SCOPED = new Set([
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'MutatingWebhookConfiguration',
]);

// biome-ignore lint/suspicious/noExplicitAny: the test walks manifests as untyped JSON; the schema check types them
type Obj = Record<string, any>;

function readYaml(file: string): unknown[] {
  return parseAllDocuments(readFileSync(file, 'utf8')).map((d) => {
    expect(d.errors, file).toEqual([]);
    return d.toJS() as unknown;
  });
}

/** Builds a kustomization directory (see the module comment). */
function build(dir: string): Obj[] {
  const k = readYaml(join(dir, 'kustomization.yaml'))[0] as Obj;
  for (const key of Object.keys(k))
    expect(SUPPORTED, `${dir}: unsupported kustomization field ${key}`).toContain(key);
  let objects: Obj[] = [];
  for (const r of k.resources as string[]) {
    const path = join(dir, r);
    objects.push(...(r.endsWith('.yaml') ? (readYaml(path) as Obj[]) : build(path)));
  }
  for (const p of (k.patches ?? []) as { path: string; target: { kind: string; name: string } }[]) {
    const ops = readYaml(join(dir, p.path))[0] as Operation[];
    const targets = objects.filter((o) => o.kind === p.target.kind && o.metadata?.name === p.target.name);
    expect(targets.length, `${dir}: patch ${p.path} target`).toBe(1);
    objects = objects.map((o) =>
      targets.includes(o) ? jsonPatch.applyPatch(jsonPatch.deepClone(o), ops, true).newDocument : o,
    );
  }
  for (const img of (k.images ?? []) as { name: string; newTag?: string; newName?: string }[]) {
    for (const c of objects.flatMap(containersOf)) {
      const [name, tag] = (c.image as string).split(':');
      if (name === img.name) c.image = `${img.newName ?? name}:${img.newTag ?? tag}`;
    }
  }
  for (const o of objects) {
    if (k.namespace !== undefined && !CLUSTER_SCOPED.has(o.kind)) o.metadata.namespace = k.namespace;
    for (const l of (k.labels ?? []) as { pairs: Record<string, string> }[])
      o.metadata.labels = { ...o.metadata.labels, ...l.pairs };
  }
  return objects;
}

function podTemplateOf(o: Obj): Obj | undefined {
  if (['Deployment', 'StatefulSet', 'DaemonSet', 'Job'].includes(o.kind)) return o.spec.template;
  return undefined;
}

function containersOf(o: Obj): Obj[] {
  const spec = podTemplateOf(o)?.spec;
  return spec === undefined ? [] : [...(spec.initContainers ?? []), ...spec.containers];
}

function selects(selector: Record<string, string>, labels: Record<string, string> = {}): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

const BUILDS: Record<string, Obj[]> = {
  base: build(join(ROOT, 'base')),
  'overlays/dev': build(join(ROOT, 'overlays/dev')),
  'overlays/production': build(join(ROOT, 'overlays/production')),
};

describe('deploy/kubernetes', () => {
  for (const [name, objects] of Object.entries(BUILDS)) {
    describe(name, () => {
      it('every object passes its typed Kubernetes schema', async () => {
        expect(objects.length).toBeGreaterThan(10);
        for (const o of objects) expect(await schemaProblems(o), `${o.kind} ${o.metadata?.name}`).toEqual([]);
      });

      it('puts everything namespaced in weft-system, with unique names per kind', () => {
        const seen = new Set<string>();
        for (const o of objects) {
          if (!CLUSTER_SCOPED.has(o.kind))
            expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBe('weft-system');
          const key = `${o.kind}/${o.metadata.name}`;
          expect(seen.has(key), key).toBe(false);
          seen.add(key);
        }
      });

      it('wires Services, disruption budgets and probes to declared pods and ports', () => {
        const workloads = objects.filter((o) => podTemplateOf(o) !== undefined);
        for (const svc of objects.filter((o) => o.kind === 'Service')) {
          const pods = workloads.filter((w) =>
            selects(svc.spec.selector, podTemplateOf(w)?.metadata?.labels),
          );
          expect(pods.length, `Service ${svc.metadata.name} selects a workload`).toBe(1);
          const ports = containersOf(pods[0] as Obj).flatMap((c) => c.ports ?? []);
          for (const p of svc.spec.ports) {
            const t = p.targetPort;
            const found = ports.some((cp: Obj) =>
              typeof t === 'string' ? cp.name === t : cp.containerPort === t,
            );
            expect(found, `Service ${svc.metadata.name} port ${p.name} → ${t}`).toBe(true);
          }
        }
        for (const pdb of objects.filter((o) => o.kind === 'PodDisruptionBudget')) {
          const pods = workloads.filter((w) =>
            selects(pdb.spec.selector.matchLabels, podTemplateOf(w)?.metadata?.labels),
          );
          expect(pods.length, `PodDisruptionBudget ${pdb.metadata.name}`).toBe(1);
        }
        for (const w of workloads) {
          for (const c of containersOf(w)) {
            const names = new Set((c.ports ?? []).map((p: Obj) => p.name));
            const numbers = new Set((c.ports ?? []).map((p: Obj) => p.containerPort));
            for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe].filter(Boolean)) {
              const port = probe.httpGet.port;
              expect(
                typeof port === 'string' ? names.has(port) : numbers.has(port),
                `${w.metadata.name} probe port ${port}`,
              ).toBe(true);
            }
          }
          const annotations = podTemplateOf(w)?.metadata?.annotations ?? {};
          expect(annotations['prometheus.io/scrape'], `${w.metadata.name} is scraped`).toBe('true');
          const declared = containersOf(w).flatMap((c) =>
            (c.ports ?? []).map((p: Obj) => String(p.containerPort)),
          );
          expect(declared).toContain(annotations['prometheus.io/port']);
        }
      });

      it('runs every container non-root, without privilege escalation, on a read-only root', () => {
        for (const w of objects.filter((o) => podTemplateOf(o) !== undefined)) {
          const spec = podTemplateOf(w)?.spec;
          expect(spec.securityContext.runAsNonRoot, w.metadata.name).toBe(true);
          expect(spec.automountServiceAccountToken, w.metadata.name).toBe(false);
          for (const c of containersOf(w)) {
            expect(c.securityContext, `${w.metadata.name}/${c.name}`).toMatchObject({
              allowPrivilegeEscalation: false,
              readOnlyRootFilesystem: true,
              capabilities: { drop: ['ALL'] },
            });
            expect(c.resources?.requests, `${w.metadata.name}/${c.name}`).toBeDefined();
          }
        }
      });

      it('has 3 etcd members, 2 control-plane replicas (1 in dev) and the injection webhook on the control plane', () => {
        const get = (kind: string, n: string) =>
          objects.find((o) => o.kind === kind && o.metadata.name === n) as Obj;
        expect(get('StatefulSet', 'weft-etcd').spec.replicas).toBe(3);
        const initial = containersOf(get('StatefulSet', 'weft-etcd'))[0]?.args.find((a: string) =>
          a.startsWith('--initial-cluster='),
        );
        expect(initial.split(',').length).toBe(3);
        expect(get('Deployment', 'weft-control-plane').spec.replicas).toBe(name === 'overlays/dev' ? 1 : 2);
        expect(get('Deployment', 'weft-gateway')).toBeDefined();
        const webhook = get('MutatingWebhookConfiguration', 'weft-sidecar-injector');
        const svc = get('Service', 'weft-control-plane');
        expect(webhook.webhooks.length).toBe(2);
        for (const h of webhook.webhooks) {
          expect(h.admissionReviewVersions).toEqual(['v1']);
          expect(h.sideEffects).toBe('None');
          expect(h.failurePolicy).toBe(name === 'overlays/dev' ? 'Ignore' : 'Fail');
          expect(h.rules[0]).toMatchObject({ operations: ['CREATE'], resources: ['pods'] });
          expect(h.clientConfig.service).toMatchObject({
            name: 'weft-control-plane',
            namespace: 'weft-system',
            path: '/inject',
          });
          expect(svc.spec.ports.map((p: Obj) => p.port)).toContain(h.clientConfig.service.port);
          if (name === 'overlays/production') expect(h.clientConfig.caBundle).toMatch(/^[A-Za-z0-9+/=]+$/);
        }
        const args: string[] = containersOf(get('Deployment', 'weft-control-plane'))[0]?.args;
        expect(args).toContain('--webhook-port=15017');
        expect(args).toContain('--san=weft-control-plane.weft-system.svc');
      });
    });
  }

  it('pins the weft image per overlay', () => {
    const images = (objects: Obj[]) =>
      new Set(
        objects
          .flatMap(containersOf)
          .map((c) => c.image as string)
          .filter((i) => i.includes('weft-mesh/weft')),
      );
    expect([...images(BUILDS['overlays/dev'] as Obj[])]).toEqual(['ghcr.io/weft-mesh/weft:dev']);
    expect([...images(BUILDS['overlays/production'] as Obj[])]).toEqual(['ghcr.io/weft-mesh/weft:0.1.0']);
  });
});

describe('Dockerfile (structure only: no Docker engine here to build it)', () => {
  const repo = dirname(dirname(ROOT.replace(/\/$/, '')));
  const lines = readFileSync(join(repo, 'Dockerfile'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
  const froms = lines.filter((l) => l.startsWith('FROM '));

  it('is multi-stage: a Node 24 build stage and a distroless Node 24 non-root runtime', () => {
    expect(froms.length).toBe(2);
    expect(froms[0]).toMatch(/^FROM node:24[-\w.]* AS build$/);
    expect(froms[1]).toMatch(/^FROM gcr\.io\/distroless\/nodejs24-[\w.]+:nonroot AS runtime$/);
    const runtime = lines.slice(lines.indexOf(froms[1] as string));
    expect(runtime.find((l) => l.startsWith('USER '))).toMatch(/^USER 65532(:65532)?$/);
    expect(runtime.some((l) => l.startsWith('RUN '))).toBe(false); // no shell in distroless
  });

  it('copies what the build needs and starts the compiled CLI', () => {
    for (const l of lines.filter((x) => /^COPY (?!--from)/.test(x))) {
      const sources = l
        .split(/\s+/)
        .slice(1, -1)
        .filter((s) => !s.startsWith('--') && s !== '.');
      for (const s of sources) expect(() => readFileSync(join(repo, s)), s).not.toThrow();
    }
    // What the compiler and the runtime read is not kept out of the build context.
    const ignored = readFileSync(join(repo, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim());
    const needed = ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'proto'];
    for (const n of [...needed, 'control-plane', 'sidecar', 'gateway']) expect(ignored, n).not.toContain(n);
    const entry = lines.find((l) => l.startsWith('ENTRYPOINT '));
    expect(JSON.parse((entry as string).slice('ENTRYPOINT '.length))).toEqual([
      '/nodejs/bin/node',
      '--max-semi-space-size=16',
      '/app/dist/control-plane/cli/main.js',
    ]);
    const build = JSON.parse(readFileSync(join(repo, 'tsconfig.build.json'), 'utf8')) as {
      include: string[];
    };
    expect(build.include).toContain('control-plane');
    expect(lines.some((l) => l.includes('npm run build'))).toBe(true);
    expect(lines.some((l) => l.includes('npm prune --omit=dev'))).toBe(true);
  });
});

describe('deploy/compose/compose.yaml', () => {
  const file = join(dirname(ROOT.replace(/\/$/, '')), 'compose', 'compose.yaml');
  const compose = readYaml(file)[0] as Obj;

  it('has etcd, the control plane, the gateway and two example services beside their sidecars', () => {
    const services = compose.services as Record<string, Obj>;
    expect(Object.keys(services).sort()).toEqual(
      ['api', 'api-sidecar', 'control-plane', 'etcd', 'gateway', 'web', 'web-sidecar'].sort(),
    );
    for (const [name, s] of Object.entries(services)) {
      expect(typeof s.image, name).toBe('string');
      const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {});
      for (const d of deps) expect(services, `${name} depends on ${d}`).toHaveProperty(d);
      if (s.network_mode !== undefined)
        expect(services).toHaveProperty(String(s.network_mode).replace(/^service:/, ''));
      for (const v of (s.volumes ?? []) as string[]) {
        const source = v.split(':')[0] as string;
        if (!source.startsWith('.'))
          expect(compose.volumes, `${name} volume ${source}`).toHaveProperty(source);
      }
    }
    for (const app of ['api', 'web']) {
      const args: string[] = services[`${app}-sidecar`]?.command;
      expect(args[0]).toBe('sidecar');
      expect(args).toContain(`--service=${app}`);
      expect(args).toContain('--outbound-address=127.0.0.1');
      expect(services[app]?.network_mode).toBe(`service:${app}-sidecar`);
    }
    expect(services.gateway?.command[0]).toBe('gateway');
    expect(services['control-plane']?.command).toContain('--etcd=http://etcd:2379');
  });
});
