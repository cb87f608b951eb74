/**
 * The sidecar-injection admission webhook, live: a real `weft control-plane --tls --webhook-port 0`
 * serves AdmissionReview v1 over HTTPS with its serving certificate from the mesh CA; requests are
 * real AdmissionReview documents (as the API server sends for a ReplicaSet's pod). The JSON Patch
 * of the answer, applied to the pod with fast-json-patch, gives the injected pod — the same as
 * `weft inject` makes — and the result passes the typed Kubernetes Pod schema.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import jsonPatch, { type Operation } from 'fast-json-patch';
import type { IPodTemplateSpec } from 'kubernetes-models/v1';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_INJECTOR_CONFIG, SIDECAR_NAME } from '../../control-plane/inject/config.ts';
import { schemaProblems } from '../../control-plane/inject/models.ts';
import { injectPodTemplate } from '../../control-plane/inject/pod.ts';
import { type ControlPlane, startControlPlane } from '../support/mesh.ts';

const FIXTURE = fileURLToPath(new URL('../fixtures/admission/pod-create.json', import.meta.url));
const IMAGE = 'registry.example/weft:test';

interface Review {
  apiVersion: string;
  kind: string;
  request: {
    uid: string;
    operation: string;
    object: Record<string, unknown> & { metadata: Record<string, unknown> };
  };
}
interface Answer {
  apiVersion: string;
  kind: string;
  response: {
    uid: string;
    allowed: boolean;
    patchType?: string;
    patch?: string;
    status?: { code: number; message: string };
  };
}

let dir: string;
let cp: ControlPlane;
let url: string;
let agent: Agent;
let bundle: string;
let review: Review;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-webhook-'));
  cp = await startControlPlane({
    dataDir: join(dir, 'cp'),
    tls: true,
    extraArgs: [
      '--webhook-port',
      '0',
      '--inject-image',
      IMAGE,
      '--inject-control-plane',
      'cp.weft-system.svc:15012',
    ],
  });
  const ready = cp.process.logs.find((e) => e.msg === 'webhook ready');
  expect(typeof ready?.port).toBe('number');
  url = `https://localhost:${String(ready?.port)}/inject`;
  bundle = await readFile(cp.caBundle as string, 'utf8');
  agent = new Agent({ connect: { ca: bundle } });
  review = JSON.parse(await readFile(FIXTURE, 'utf8')) as Review;
});

afterAll(async () => {
  await agent?.close();
  await cp?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function post(
  body: unknown,
  contentType = 'application/json',
): Promise<{ status: number; text: string }> {
  const res = await request(url, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': contentType },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.statusCode, text: await res.body.text() };
}

async function answer(body: unknown): Promise<Answer> {
  const res = await post(body);
  expect(res.status, res.text).toBe(200);
  return JSON.parse(res.text) as Answer;
}

function withPod(mutate: (r: Review) => void): Review {
  const r = jsonPatch.deepClone(review) as Review;
  mutate(r);
  return r;
}

describe('admission webhook over HTTPS', () => {
  it('serves a certificate from the mesh CA for the control-plane identity', async () => {
    const port = Number(new URL(url).port);
    const san = await new Promise<string>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: bundle }, () => {
        const cert = socket.getPeerCertificate();
        socket.end();
        resolve(cert.subjectaltname ?? '');
      });
      socket.on('error', reject);
    });
    expect(san).toContain('URI:spiffe://cluster.local/ns/weft-system/sa/control-plane');
    expect(san).toContain('DNS:localhost');
  });

  it('patches a pod CREATE: the patch applied to the pod gives the injected pod, which validates', async () => {
    const a = await answer(review);
    expect(a.apiVersion).toBe('admission.k8s.io/v1');
    expect(a.kind).toBe('AdmissionReview');
    expect(a.response.uid).toBe(review.request.uid);
    expect(a.response.allowed).toBe(true);
    expect(a.response.patchType).toBe('JSONPatch');
    const ops = JSON.parse(Buffer.from(a.response.patch as string, 'base64').toString('utf8')) as Operation[];
    expect(ops.length).toBeGreaterThan(0);
    for (const op of ops) expect(['add', 'replace', 'remove']).toContain(op.op);

    const pod = jsonPatch.deepClone(review.request.object) as Record<string, unknown>;
    const patched = jsonPatch.applyPatch(pod, ops, true, false).newDocument as Record<string, unknown>;
    const expected = injectPodTemplate(
      jsonPatch.deepClone({
        metadata: review.request.object.metadata,
        spec: review.request.object.spec,
      }) as IPodTemplateSpec,
      { ...DEFAULT_INJECTOR_CONFIG, image: IMAGE, controlPlane: 'cp.weft-system.svc:15012' },
      { resource: 'Pod', workloadName: undefined },
    );
    expect(expected.result).toBe('injected');
    if (expected.result !== 'injected') return;
    expect(patched.metadata).toEqual(expected.template.metadata);
    expect(patched.spec).toEqual(expected.template.spec);
    expect(patched.status).toEqual({});
    expect(await schemaProblems(patched)).toEqual([]);

    const spec = patched.spec as NonNullable<IPodTemplateSpec['spec']>;
    const sidecar = spec.initContainers?.[0];
    expect(sidecar?.name).toBe(SIDECAR_NAME);
    expect(sidecar?.image).toBe(IMAGE);
    expect(sidecar?.restartPolicy).toBe('Always');
    expect(sidecar?.args).toContain('--service=api');
    expect(sidecar?.args).toContain('--control-plane=cp.weft-system.svc:15012');
    // The app's own volume mounts and env are kept.
    expect(spec.containers[0]?.volumeMounts?.[0]?.name).toBe('kube-api-access-x7k2p');
    expect(spec.containers[0]?.env?.some((e) => e.name === 'LOG_LEVEL')).toBe(true);
  });

  it('leaves an injected pod as it is (idempotent: no patch)', async () => {
    const first = await answer(review);
    const ops = JSON.parse(Buffer.from(first.response.patch as string, 'base64').toString()) as Operation[];
    const injected = jsonPatch.applyPatch(
      jsonPatch.deepClone(review.request.object),
      ops,
      true,
      false,
    ).newDocument;
    const again = await answer(withPod((r) => Object.assign(r.request, { object: injected })));
    expect(again.response).toMatchObject({ uid: review.request.uid, allowed: true });
    expect(again.response.patch).toBeUndefined();
  });

  it('respects weft.dev/inject: disabled on the pod', async () => {
    const a = await answer(
      withPod((r) => {
        (r.request.object.metadata.labels as Record<string, string>)['weft.dev/inject'] = 'disabled';
      }),
    );
    expect(a.response.allowed).toBe(true);
    expect(a.response.patch).toBeUndefined();
  });

  it('allows UPDATE and other kinds unchanged', async () => {
    const a = await answer(withPod((r) => Object.assign(r.request, { operation: 'UPDATE' })));
    expect(a.response).toMatchObject({ allowed: true });
    expect(a.response.patch).toBeUndefined();
  });

  it('refuses a pod with a bad config.weft.dev annotation, naming pod, field and reason', async () => {
    const a = await answer(
      withPod((r) => {
        r.request.object.metadata.annotations = { 'config.weft.dev/app-port': 'eighty' };
      }),
    );
    expect(a.response.allowed).toBe(false);
    expect(a.response.status?.code).toBe(400);
    expect(a.response.status?.message).toMatch(
      /Pod shop\/api-7c9d8b6f5-<generated>: .*config\.weft\.dev\/app-port.*must be a port/,
    );
  });

  it('answers malformed requests with 4xx and keeps serving', async () => {
    expect((await post('{not json')).status).toBe(400);
    expect(
      (await post({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'x' } }))
        .text,
    ).toMatch(/apiVersion/);
    expect(
      (await post({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: {} })).status,
    ).toBe(400);
    expect((await post(review, 'text/plain')).status).toBe(415);
    expect((await post(`{"pad":"${'x'.repeat(5 * 1024 * 1024)}"}`)).status).toBe(413);
    const get = await request(url, { dispatcher: agent });
    expect(get.statusCode).toBe(405);
    await get.body.dump();
    const other = await request(url.replace('/inject', '/other'), { dispatcher: agent });
    expect(other.statusCode).toBe(404);
    await other.body.dump();
    expect((await answer(review)).response.allowed).toBe(true);
  });
});
