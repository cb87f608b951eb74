/**
 * `weft inject` table tests: every workload kind, a List, a multi-document stream with the
 * inject labels, annotation overrides. Each case's output is a golden file
 * (test/golden-inject/<case>.output.yaml; `UPDATE_GOLDEN=1` rewrites them, review the diff),
 * every output object passes the typed Kubernetes schema (kubernetes-models), the sidecar is a
 * native sidecar with the probes and restricted security context, and injecting the output
 * again changes nothing.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { IContainer, IPodTemplateSpec } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import {
  DEFAULT_INJECTOR_CONFIG,
  InjectionError,
  SIDECAR_NAME,
} from '../../../control-plane/inject/config.ts';
import { injectManifests, TEMPLATE_PATHS } from '../../../control-plane/inject/manifests.ts';
import { schemaProblems } from '../../../control-plane/inject/models.ts';

const DIR = fileURLToPath(new URL('../../golden-inject/', import.meta.url));
const UPDATE = process.env.UPDATE_GOLDEN === '1';
const config = DEFAULT_INJECTOR_CONFIG;

/** What each case's report must say, in order. */
const EXPECTED: Record<string, string[]> = {
  capture: ['Deployment shop/legacy-client: injected'],
  deployment: ['Deployment shop/api: injected'],
  statefulset: ['StatefulSet shop/store: injected'],
  daemonset: ['DaemonSet ops/node-agent: injected'],
  replicaset: ['ReplicaSet default/web: injected'],
  job: ['Job batch/report: injected'],
  cronjob: ['CronJob batch/nightly: injected'],
  pod: ['Pod shop/debug: injected'],
  list: ['Service default/orders: passed-through', 'Deployment default/orders: injected'],
  'multi-document': [
    'Namespace legacy: passed-through',
    'Deployment legacy/old: disabled',
    'Deployment legacy/meshed: injected',
    'Deployment shop/opted-out: disabled',
    'ConfigMap shop/settings: passed-through',
  ],
};

const cases = readdirSync(DIR)
  .filter((f) => f.endsWith('.input.yaml'))
  .map((f) => f.slice(0, -'.input.yaml'.length))
  .sort();

function objects(text: string): Record<string, unknown>[] {
  return parseAllDocuments(text as string).flatMap((d) => {
    const v = d.toJS() as Record<string, unknown> | null;
    if (v === null) return [];
    return v.kind === 'List' ? (v.items as Record<string, unknown>[]) : [v];
  });
}

function templateOf(obj: Record<string, unknown>): IPodTemplateSpec | undefined {
  const path = TEMPLATE_PATHS[`${String(obj.apiVersion)}/${String(obj.kind)}`];
  if (path === undefined) return undefined;
  if (path.length === 0) return obj as IPodTemplateSpec;
  let v: unknown = obj;
  for (const k of path) v = (v as Record<string, unknown>)[k];
  return v as IPodTemplateSpec;
}

describe('weft inject golden files', () => {
  it('covers every workload kind, a List and a multi-document stream', () => {
    expect(cases).toEqual(Object.keys(EXPECTED).sort());
  });

  for (const name of cases) {
    it(`${name}: matches its golden output, validates, and is idempotent`, async () => {
      const input = readFileSync(`${DIR}${name}.input.yaml`, 'utf8');
      const { text, reports } = injectManifests(input, config, `${name}.input.yaml`);
      expect(reports.map((r) => `${r.resource}: ${r.result}`)).toEqual(EXPECTED[name]);
      const golden = `${DIR}${name}.output.yaml`;
      if (UPDATE) writeFileSync(golden, text);
      expect(existsSync(golden), `${golden} is missing: run with UPDATE_GOLDEN=1 and review it`).toBe(true);
      expect(text).toBe(readFileSync(golden, 'utf8'));

      for (const obj of objects(text)) {
        expect(await schemaProblems(obj), `${String(obj.kind)} schema`).toEqual([]);
        const template = templateOf(obj);
        const sidecar = template?.spec?.initContainers?.find((c) => c.name === SIDECAR_NAME);
        if (sidecar === undefined) continue;
        expect(template?.spec?.initContainers?.[0]?.name).toBe(SIDECAR_NAME);
        checkSidecar(sidecar);
        const capture = template?.spec?.initContainers?.find((c) => c.name === 'weft-capture');
        for (const app of template?.spec?.containers ?? []) {
          const env = new Map((app.env ?? []).map((e) => [e.name, e.value]));
          if (capture !== undefined) {
            expect(env.has('HTTP_PROXY')).toBe(false);
            continue;
          }
          expect(env.get('HTTP_PROXY')).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
          expect(env.get('NODE_USE_ENV_PROXY')).toBe('1');
          expect(env.has('NO_PROXY')).toBe(true);
        }
        if (capture !== undefined) {
          expect(template?.spec?.initContainers?.[1]?.name).toBe('weft-capture');
          expect(capture.securityContext?.capabilities?.add).toEqual(['NET_ADMIN', 'NET_RAW']);
          const rules = capture.env?.find((e) => e.name === 'WEFT_CAPTURE_RULES')?.value ?? '';
          expect(rules).toContain('-A WEFT_OUTPUT -m owner --uid-owner 1337 -j RETURN');
          expect(rules).toContain('-A WEFT_INBOUND -p tcp -j REDIRECT --to-ports 15006');
        }
      }

      const again = injectManifests(text, config);
      expect(again.text).toBe(text);
      expect(again.reports.every((r) => r.result !== 'injected')).toBe(true);
    });
  }

  it('passes documents without workloads through byte for byte', () => {
    const input = readFileSync(`${DIR}multi-document.input.yaml`, 'utf8');
    const out = injectManifests(input, config).text;
    const configMap = input.slice(input.lastIndexOf('---'));
    expect(out.endsWith(configMap)).toBe(true);
    expect(out.startsWith(input.slice(0, input.indexOf('---', 10)))).toBe(true);
  });

  it('injects a Job with a native sidecar, so the Job completes when its container does', () => {
    const { text } = injectManifests(readFileSync(`${DIR}job.input.yaml`, 'utf8'), config);
    const job = objects(text)[0] as Record<string, unknown>;
    const spec = templateOf(job)?.spec;
    expect(spec?.restartPolicy).toBe('Never');
    expect(spec?.containers.map((c) => c.name)).toEqual(['report']);
    expect(spec?.initContainers?.map((c) => [c.name, c.restartPolicy])).toEqual([[SIDECAR_NAME, 'Always']]);
  });

  it('applies the config.weft.dev annotations', () => {
    const { text } = injectManifests(readFileSync(`${DIR}pod.input.yaml`, 'utf8'), config);
    const pod = objects(text)[0] as Record<string, unknown>;
    const spec = templateOf(pod)?.spec;
    const sidecar = spec?.initContainers?.[0] as IContainer;
    expect(sidecar.args).toEqual(
      expect.arrayContaining([
        '--service=toolbox',
        '--app-port=8000',
        '--inbound-port=16006',
        '--outbound-port=16001',
        '--admin-port=16000',
        '--log-level=debug',
      ]),
    );
    expect(sidecar.resources).toEqual({
      requests: { cpu: '50m', memory: '64Mi' },
      limits: { cpu: '1', memory: '512Mi' },
    });
    expect(sidecar.startupProbe?.httpGet?.port).toBe(16000);
    expect(spec?.volumes?.find((v) => v.name === 'weft-token')?.secret?.secretName).toBe(
      'toolbox-join-token',
    );
    const [toolbox, helper] = spec?.containers ?? [];
    const envOf = (c: IContainer | undefined) => new Map((c?.env ?? []).map((e) => [e.name, e.value]));
    expect(envOf(toolbox).get('NO_PROXY')).toBe('example.com'); // the app's own value wins
    expect(envOf(helper).get('NO_PROXY')).toContain('.internal.example,10.0.0.0/8');
    expect(envOf(helper).get('HTTP_PROXY')).toBe('http://127.0.0.1:16001');
    // The pod's own prometheus.io annotations are kept.
    const annotations = (pod.metadata as { annotations: Record<string, string> }).annotations;
    expect(annotations['prometheus.io/scrape']).toBe('false');
    expect(annotations['prometheus.io/port']).toBeUndefined();
  });
});

function checkSidecar(c: IContainer): void {
  expect(c.restartPolicy).toBe('Always');
  expect(c.startupProbe?.httpGet?.path).toBe('/ready');
  expect(c.readinessProbe?.httpGet?.path).toBe('/ready');
  expect(c.args?.[0]).toBe('sidecar');
  expect(c.args).toEqual(
    expect.arrayContaining([
      `--control-plane=${config.controlPlane}`,
      '--token-file=/var/run/secrets/weft/token',
      '--ca-bundle=/etc/weft/ca/ca-bundle.pem',
      '--proxy-id=$(POD_NAME).$(POD_NAMESPACE)',
    ]),
  );
  expect(c.securityContext).toMatchObject({
    runAsNonRoot: true,
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
  });
  expect(c.resources?.requests).toBeDefined();
}

describe('weft inject refuses bad input with resource, field and reason', () => {
  const deployment = (annotations: Record<string, string>, ports = '[{ containerPort: 8080 }]') => `
apiVersion: apps/v1
kind: Deployment
metadata: { name: api, namespace: shop }
spec:
  selector: { matchLabels: { app: api } }
  template:
    metadata:
      labels: { app: api }
      annotations: ${JSON.stringify(annotations)}
    spec:
      containers: [{ name: api, image: "example/api:1", ports: ${ports} }]
`;
  const table: [string, string, Record<string, string>, string?][] = [
    ['a port out of range', 'config.weft.dev/app-port', { 'config.weft.dev/app-port': '70000' }],
    [
      'a port that is not a number',
      'config.weft.dev/inbound-port',
      { 'config.weft.dev/inbound-port': 'http' },
    ],
    ['two ports the same', 'config.weft.dev/outbound-port', { 'config.weft.dev/outbound-port': '15006' }],
    [
      'a bad quantity',
      'config.weft.dev/proxy-memory-limit',
      { 'config.weft.dev/proxy-memory-limit': '1 GB' },
    ],
    ['an unknown annotation', 'config.weft.dev/proxy-cpu', { 'config.weft.dev/proxy-cpu': '1' }],
    ['a service that is not a DNS label', 'config.weft.dev/service', { 'config.weft.dev/service': 'Api_1' }],
    ['a bad log level', 'config.weft.dev/log-level', { 'config.weft.dev/log-level': 'loud' }],
    ['an unknown capture mode', 'config.weft.dev/capture', { 'config.weft.dev/capture': 'ebpf' }],
    ['no app port anywhere', 'config.weft.dev/app-port', {}, '[]'],
  ];
  for (const [what, field, annotations, ports] of table) {
    it(`refuses ${what}`, () => {
      let error: unknown;
      try {
        injectManifests(deployment(annotations, ports), config, 'in.yaml');
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(InjectionError);
      const e = error as InjectionError;
      expect(e.resource).toBe('Deployment shop/api');
      expect(e.field).toContain(field);
      expect(e.reason.length).toBeGreaterThan(5);
    });
  }

  it('refuses YAML that does not parse, naming the document', () => {
    expect(() => injectManifests('a: 1\n---\nb: [\n', config, 'x.yaml')).toThrow(/x\.yaml document #2/);
  });

  it('refuses a workload without a pod template', () => {
    expect(() =>
      injectManifests('apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: x }\nspec: {}\n', config),
    ).toThrow(/Deployment default\/x: spec\.template\.spec\.containers/);
  });
});
