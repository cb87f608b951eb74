/**
 * The mesh CA end to end: the `weft.v1.Identity` service on a TLS `DiscoveryServer` (real gRPC on
 * 127.0.0.1 port 0, memory store), the sidecar's `IdentityClient`, and a real `weft
 * control-plane --tls` process driven by the `weft token`/`weft ca` verbs.
 *
 * Certificates are checked with Node's X509Certificate and TLS (a mutual-TLS handshake between two
 * issued leaves) and with the openssl binary. Time-dependent behaviour uses short TTLs and polls
 * with deadlines, or a hand-moved clock; nothing sleeps to synchronise.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { type ChannelCredentials, credentials, Metadata, type ServiceError, status } from '@grpc/grpc-js';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { CertificateAuthority } from '../../control-plane/ca/authority.ts';
import { BUNDLE_FILE } from '../../control-plane/ca/bundle.ts';
import {
  createIdentityClient,
  type IssueRequestMessage,
  type IssueResponseMessage,
} from '../../control-plane/ca/proto.ts';
import { identityService } from '../../control-plane/ca/service.ts';
import { ServingCertificate } from '../../control-plane/ca/serving.ts';
import { startIdentity } from '../../control-plane/ca/setup.ts';
import { JoinTokens } from '../../control-plane/ca/tokens.ts';
import { DiscoveryServer } from '../../control-plane/discovery/server.ts';
import { CA_KEY } from '../../control-plane/store/keys.ts';
import {
  IdentityClient,
  IdentityRefusedError,
  type WorkloadCertificate,
} from '../../sidecar/agent/identity.ts';
import { MemoryStore } from '../support/memory-store.ts';
import { Clock, csrFor, foreignCa, opensslVerify, pemBlocks } from '../unit/ca/helpers.ts';

const WEFT = fileURLToPath(new URL('../../bin/weft', import.meta.url));
const silent = pino({ level: 'silent' });

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function until<T>(
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  what: string,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? ` (${(last as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface Plane {
  readonly store: MemoryStore;
  readonly ca: CertificateAuthority;
  readonly tokens: JoinTokens;
  readonly serving: ServingCertificate;
  readonly registry: Registry;
  readonly address: string;
  readonly clock: Clock | undefined;
  bundlePem(): string;
  issued(via: 'token' | 'certificate'): Promise<number>;
}

/** A TLS discovery server with the Identity service on 127.0.0.1:0 over a memory store. */
async function startPlane(
  options: { store?: MemoryStore; certTtlMs?: number; tokenClock?: Clock } = {},
): Promise<Plane> {
  const store = options.store ?? new MemoryStore();
  const ca = await CertificateAuthority.open({
    store,
    logger: silent,
    ...(options.certTtlMs !== undefined && { certTtlMs: options.certTtlMs }),
  });
  const tokens = new JoinTokens(store, options.tokenClock?.now);
  const serving = await ServingCertificate.start({ ca, names: ['127.0.0.1'] });
  const registry = new Registry();
  const discovery = new DiscoveryServer({
    store,
    snapshotFor: () => undefined,
    replicaId: 'cp-test',
    credentials: serving.serverCredentials(),
    extraServices: [identityService({ ca, tokens, registry })],
  });
  const port = await discovery.start('127.0.0.1', 0);
  cleanups.push(async () => {
    await discovery.stop();
    serving.close();
    await ca.close();
  });
  return {
    store,
    ca,
    tokens,
    serving,
    registry,
    address: `127.0.0.1:${port}`,
    clock: options.tokenClock,
    bundlePem: () => ca.bundle().rootsPem.join(''),
    async issued(via) {
      const metric = await registry.getSingleMetric('weft_cp_certificates_issued_total')?.get();
      return metric?.values.find((v) => v.labels.via === via)?.value ?? 0;
    },
  };
}

/** One raw Issue call; resolves with the response or the gRPC error. */
function issueRaw(
  address: string,
  creds: ChannelCredentials,
  request: IssueRequestMessage,
): Promise<{ response?: IssueResponseMessage; error?: ServiceError }> {
  const client = createIdentityClient(address, creds);
  return new Promise((resolve) => {
    client.Issue(request, new Metadata(), { deadline: Date.now() + 10_000 }, (error, response) => {
      client.close();
      resolve(error ? { error } : { ...(response !== undefined && { response }) });
    });
  });
}

function tlsOnly(plane: Plane): ChannelCredentials {
  return credentials.createSsl(Buffer.from(plane.bundlePem()));
}

function identityClient(
  plane: Plane,
  options: Partial<ConstructorParameters<typeof IdentityClient>[0]> = {},
): IdentityClient {
  const client = new IdentityClient({ address: plane.address, bundlePem: plane.bundlePem(), ...options });
  cleanups.push(() => client.close());
  return client;
}

/** A mutual-TLS handshake between two issued identities over loopback; resolves with both sides' views. */
async function mtlsHandshake(
  server: WorkloadCertificate,
  client: WorkloadCertificate,
): Promise<{ serverSaw: string; clientSaw: string }> {
  const ca = server.trustBundlePem.join('');
  const srv = createServer({
    key: server.keyPem,
    cert: server.certChainPem,
    ca,
    requestCert: true,
    rejectUnauthorized: true,
  });
  const seen = new Promise<string>((resolve) =>
    srv.once('secureConnection', (s: TLSSocket) => {
      resolve(String(s.getPeerCertificate().subjectaltname));
      s.end();
    }),
  );
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  try {
    const clientSaw = await new Promise<string>((resolve, reject) => {
      const socket = connect({
        host: '127.0.0.1',
        port,
        key: client.keyPem,
        cert: client.certChainPem,
        ca,
        checkServerIdentity: () => undefined, // SPIFFE peers are checked by ID, not host name
      });
      socket.once('secureConnect', () => {
        if (!socket.authorized) reject(socket.authorizationError);
        else resolve(String(socket.getPeerCertificate().subjectaltname));
        socket.end();
      });
      socket.once('error', reject);
    });
    return { serverSaw: await seen, clientSaw };
  } finally {
    srv.close();
  }
}

describe('Identity service: issuance', () => {
  it('issues for the token’s identity even when the CSR asks for another service’s SPIFFE ID', async () => {
    const plane = await startPlane();
    const { token } = await plane.tokens.create({ service: 'web', namespace: 'shop' });
    const { pair, csrPem } = await csrFor({
      commonName: 'payments',
      uriSans: ['spiffe://cluster.local/ns/shop/sa/payments'],
      dnsSans: ['payments.shop'],
    });
    const { response, error } = await issueRaw(plane.address, tlsOnly(plane), { csrPem, token });
    expect(error).toBeUndefined();
    expect(response?.spiffeId).toBe('spiffe://cluster.local/ns/shop/sa/web');
    expect(response?.trustDomain).toBe('cluster.local');
    const leaf = new X509Certificate(response?.certificateChainPem ?? '');
    expect(leaf.subjectAltName).toBe('URI:spiffe://cluster.local/ns/shop/sa/web');
    expect(leaf.subject).toBe('CN=/ns/shop/sa/web');
    expect(leaf.publicKey.export({ type: 'spki', format: 'pem' })).toBe(pair.publicKeyPem);
    expect(response?.expiresAtMs).toBe(leaf.validToDate.getTime());
    const roots = response?.trustBundlePem ?? [];
    expect(roots).toEqual(plane.ca.bundle().rootsPem);
    expect(leaf.verify(new X509Certificate(roots[0] as string).publicKey)).toBe(true);
    const verified = await opensslVerify(roots.join(''), response?.certificateChainPem ?? '');
    expect(verified.output).toContain(': OK');
    expect(verified.code).toBe(0);
  });

  it('refuses unknown, malformed, expired and revoked tokens with UNAUTHENTICATED', async () => {
    const clock = new Clock();
    const plane = await startPlane({ tokenClock: clock });
    const { csrPem } = await csrFor();
    const expiring = await plane.tokens.create({ service: 'web', ttlMs: 60_000 });
    const revoked = await plane.tokens.create({ service: 'web' });
    await plane.tokens.revoke(revoked.info.id);
    clock.advance(60_000);
    const cases: [string, RegExp][] = [
      [`${'0'.repeat(16)}.${'A'.repeat(43)}`, /unknown join token/],
      [`${expiring.token.split('.')[0]}.${'B'.repeat(43)}`, /unknown join token/],
      ['not-a-token', /malformed join token/],
      [expiring.token, /expired at/],
      [revoked.token, /has been revoked/],
    ];
    for (const [token, message] of cases) {
      const { error } = await issueRaw(plane.address, tlsOnly(plane), { csrPem, token });
      expect(error?.code, token).toBe(status.UNAUTHENTICATED);
      expect(error?.details).toMatch(message);
    }
    expect(await plane.issued('token')).toBe(0);
  });

  it('refuses a call with no credentials, and one with a certificate from another CA', async () => {
    const plane = await startPlane();
    const { csrPem } = await csrFor();
    const none = await issueRaw(plane.address, tlsOnly(plane), { csrPem });
    expect(none.error?.code).toBe(status.UNAUTHENTICATED);
    expect(none.error?.details).toMatch(/no credentials/);
    const foreign = await foreignCa();
    const creds = credentials.createSsl(
      Buffer.from(plane.bundlePem()),
      Buffer.from(foreign.leaf.keyPem),
      Buffer.from(foreign.leaf.certPem),
    );
    const other = await issueRaw(plane.address, creds, { csrPem });
    expect(other.error?.code).toBe(status.UNAUTHENTICATED);
  });

  it('answers INVALID_ARGUMENT for a bad CSR after authenticating', async () => {
    const plane = await startPlane();
    const { token } = await plane.tokens.create({ service: 'web' });
    const { error } = await issueRaw(plane.address, tlsOnly(plane), { csrPem: 'garbage', token });
    expect(error?.code).toBe(status.INVALID_ARGUMENT);
    expect(error?.details).toMatch(/csrPem/);
  });

  it('gives two services certificates that authenticate each other in a mutual-TLS handshake', async () => {
    const plane = await startPlane();
    const a = identityClient(plane, { token: (await plane.tokens.create({ service: 'web' })).token });
    const b = identityClient(plane, { token: (await plane.tokens.create({ service: 'api' })).token });
    const [web, api] = await Promise.all([a.start(), b.start()]);
    const seen = await mtlsHandshake(api, web);
    expect(seen).toEqual({
      serverSaw: 'URI:spiffe://cluster.local/ns/default/sa/web',
      clientSaw: 'URI:spiffe://cluster.local/ns/default/sa/api',
    });
  });
});

describe('IdentityClient: renewal', () => {
  it('renews with its current certificate, without the token (which may since be revoked)', async () => {
    const plane = await startPlane();
    const created = await plane.tokens.create({ service: 'web' });
    const client = identityClient(plane, { token: created.token });
    const first = await client.start();
    expect(first.spiffeId).toBe('spiffe://cluster.local/ns/default/sa/web');
    await plane.tokens.revoke(created.info.id);
    const seen: WorkloadCertificate[] = [];
    client.onIdentity((id) => seen.push(id));
    const second = await client.renewNow();
    expect(second.spiffeId).toBe(first.spiffeId);
    expect(second.keyPem).not.toBe(first.keyPem);
    expect(new X509Certificate(second.certChainPem).serialNumber).not.toBe(
      new X509Certificate(first.certChainPem).serialNumber,
    );
    expect(seen).toEqual([second]);
    expect(await plane.issued('certificate')).toBe(1);
    expect(await plane.issued('token')).toBe(1);
  });

  it('serves the discovery port its client certificate through channelCredentials()', async () => {
    const plane = await startPlane();
    const client = identityClient(plane, { token: (await plane.tokens.create({ service: 'api' })).token });
    await client.start();
    const { csrPem } = await csrFor();
    const { response, error } = await issueRaw(plane.address, client.channelCredentials(), { csrPem });
    expect(error).toBeUndefined();
    expect(response?.spiffeId).toBe('spiffe://cluster.local/ns/default/sa/api');
  });

  it('renews on its own at about half the lifetime, before expiry', async () => {
    const plane = await startPlane({ certTtlMs: 4000 });
    const client = identityClient(plane, { token: (await plane.tokens.create({ service: 'web' })).token });
    const first = await client.start();
    const startedAt = Date.now();
    const renewed = await new Promise<WorkloadCertificate>((resolve) => client.onIdentity(resolve));
    const after = Date.now() - startedAt;
    expect(renewed.expiresAtMs).toBeGreaterThan(first.expiresAtMs);
    expect(Date.now()).toBeLessThan(first.expiresAtMs);
    expect(after).toBeGreaterThan(1000);
    expect(await plane.issued('certificate')).toBe(1);
  });

  it('falls back to the join token once its certificate has expired, and gives up without one', async () => {
    const plane = await startPlane();
    const clock = new Clock();
    const token = (await plane.tokens.create({ service: 'web' })).token;
    const withToken = identityClient(plane, { token, now: clock.now });
    const first = await withToken.start();
    clock.ms = first.expiresAtMs + 1;
    await withToken.renewNow();
    expect(await plane.issued('token')).toBe(2);
    expect(await plane.issued('certificate')).toBe(0);

    const noToken = new IdentityClient({ address: plane.address, bundlePem: plane.bundlePem() });
    cleanups.push(() => noToken.close());
    await expect(noToken.start()).rejects.toThrow(IdentityRefusedError);
  });

  it('rejects start() at once when the token is refused', async () => {
    const plane = await startPlane();
    const client = identityClient(plane, { token: `${'0'.repeat(16)}.${'A'.repeat(43)}` });
    const err = await client.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(IdentityRefusedError);
    expect((err as IdentityRefusedError).code).toBe(status.UNAUTHENTICATED);
  });
});

describe('root rotation over gRPC', () => {
  it('hands out both roots during the overlap, new leaves of the new root, and drops the old root after', async () => {
    const plane = await startPlane();
    const client = identityClient(plane, { token: (await plane.tokens.create({ service: 'web' })).token });
    const before = await client.start();
    const oldRoot = before.trustBundlePem[0] as string;

    await plane.ca.rotate(1500, 0);
    const during = await client.renewNow(); // by certificate: the old root is still trusted
    const [newRoot, kept] = during.trustBundlePem as [string, string];
    expect(during.trustBundlePem).toHaveLength(2);
    expect(kept).toBe(oldRoot);
    const leaf = new X509Certificate(during.certChainPem);
    expect(leaf.verify(new X509Certificate(newRoot).publicKey)).toBe(true);
    expect(leaf.verify(new X509Certificate(oldRoot).publicKey)).toBe(false);
    expect((await opensslVerify(newRoot, during.certChainPem)).code).toBe(0);
    expect((await opensslVerify(oldRoot, during.certChainPem)).code).not.toBe(0);
    // A peer still on the old root and one on the new root trust each other during the overlap.
    expect(
      (await mtlsHandshake(during, { ...before, trustBundlePem: during.trustBundlePem })).serverSaw,
    ).toContain('sa/web');

    await until(() => plane.ca.bundle().rootsPem.length === 1, 'the old root to be retired');
    expect(plane.ca.bundle().rootsPem).toEqual([newRoot]);
    // The control plane now serves a certificate of the new root; the client learnt it.
    await until(
      () =>
        new X509Certificate(plane.serving.current().certChainPem).verify(
          new X509Certificate(newRoot).publicKey,
        ),
      'the serving certificate to move to the new root',
    );
    const after = await client.renewNow();
    expect(after.trustBundlePem).toEqual([newRoot]);
    // Leaves of the old root no longer authenticate.
    const oldCreds = credentials.createSsl(
      Buffer.from(newRoot),
      Buffer.from(before.keyPem),
      Buffer.from(before.certChainPem),
    );
    const { csrPem } = await csrFor();
    expect((await issueRaw(plane.address, oldCreds, { csrPem })).error?.code).toBe(status.UNAUTHENTICATED);
  });
});

describe('control-plane setup (startIdentity)', () => {
  it('shares one CA between two control planes on one store: the first creates, the second loads', async () => {
    const store = new MemoryStore();
    const dirs = await Promise.all([
      mkdtemp(join(tmpdir(), 'weft-ca-a-')),
      mkdtemp(join(tmpdir(), 'weft-ca-b-')),
    ]);
    cleanups.push(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
    const a = await startIdentity({
      store,
      dataDir: dirs[0] as string,
      logger: silent,
      address: '127.0.0.1',
    });
    cleanups.push(() => a.close());
    const created = await store.get(CA_KEY);
    const b = await startIdentity({
      store,
      dataDir: dirs[1] as string,
      logger: silent,
      address: '127.0.0.1',
    });
    cleanups.push(() => b.close());
    expect((await store.get(CA_KEY))?.modRevision).toBe(created?.modRevision);
    expect(b.ca.activeId()).toBe(a.ca.activeId());
    const [fileA, fileB] = await Promise.all(dirs.map((d) => readFile(join(d, BUNDLE_FILE), 'utf8')));
    expect(fileA).toBe(fileB);

    // A leaf issued by B's discovery port, bootstrapped with A's bundle file, authenticates at A.
    const discovery = new DiscoveryServer({
      store,
      snapshotFor: () => undefined,
      replicaId: 'b',
      credentials: b.credentials,
      extraServices: b.services,
    });
    const port = await discovery.start('127.0.0.1', 0);
    cleanups.push(() => discovery.stop());
    const { token } = await a.tokens.create({ service: 'web' });
    const client = new IdentityClient({ address: `127.0.0.1:${port}`, bundlePem: fileA as string, token });
    cleanups.push(() => client.close());
    const id = await client.start();
    expect(a.ca.verifyPeer(Buffer.from(new X509Certificate(id.certChainPem).raw)).serviceAccount).toBe('web');
  });

  it('encrypts the CA key at rest with a key file, keeps the data dir 0700 and writes a 0644 bundle file', async () => {
    const store = new MemoryStore();
    const dataDir = join(await mkdtemp(join(tmpdir(), 'weft-ca-enc-')), 'data');
    cleanups.push(() => rm(join(dataDir, '..'), { recursive: true, force: true }));
    const keyFile = join(dataDir, '..', 'ca.key');
    await writeFile(keyFile, randomBytes(32).toString('hex'), { mode: 0o600 });
    const setup = await startIdentity({
      store,
      dataDir,
      logger: silent,
      address: '127.0.0.1',
      caEncryptionKeyFile: keyFile,
    });
    cleanups.push(() => setup.close());
    const stored = (await store.get(CA_KEY))?.value ?? '';
    expect(stored).not.toContain('PRIVATE KEY');
    expect(stored).toContain('aes-256-gcm');
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
    expect((await stat(setup.bundleFile)).mode & 0o777).toBe(0o644);
    expect(setup.services).toHaveLength(1); // weft.v1.Identity
    const { csrPem } = await csrFor();
    const leaf = await setup.ca.issue(csrPem, { namespace: 'default', serviceAccount: 'web' });
    const verified = await opensslVerify(await readFile(setup.bundleFile, 'utf8'), leaf.certificateChainPem);
    expect(verified.code).toBe(0);

    await setup.ca.rotate(60_000, 0);
    await until(
      async () => pemBlocks(await readFile(setup.bundleFile, 'utf8')).length === 2,
      'the bundle file to hold both roots',
    );
  });
});

/** `weft control-plane --tls` as a real process, and the token / ca verbs against it. */
describe('weft control-plane --tls with weft token and weft ca', () => {
  interface Cp {
    readonly child: ChildProcess;
    readonly dataDir: string;
    readonly grpc: string;
    readonly admin: string;
    readonly lines: string[];
  }

  async function startCp(extra: readonly string[] = [], tls = true): Promise<Cp> {
    const dataDir = await mkdtemp(join(tmpdir(), 'weft-cp-tls-'));
    const child = spawn(
      WEFT,
      [
        'control-plane',
        ...(tls ? ['--tls'] : ['--no-tls']),
        '--data-dir',
        dataDir,
        '--grpc-port',
        '0',
        '--admin-port',
        '0',
        '--monitoring-port',
        '0',
        ...extra,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const lines: string[] = [];
    const onData = (c: Buffer): void => {
      lines.push(
        ...c
          .toString()
          .split('\n')
          .filter((l) => l !== ''),
      );
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
      await rm(dataDir, { recursive: true, force: true });
    });
    const entry = (msg: string): Record<string, unknown> | undefined =>
      lines
        .map((l) => {
          try {
            return JSON.parse(l) as Record<string, unknown>;
          } catch {
            return undefined;
          }
        })
        .find((e) => e?.msg === msg);
    await until(
      () => {
        if (child.exitCode !== null) throw new Error(`control plane exited:\n${lines.join('\n')}`);
        return entry('control plane ready');
      },
      'control plane ready',
      30_000,
    );
    return {
      child,
      dataDir,
      grpc: `127.0.0.1:${entry('discovery ready')?.port}`,
      admin: `http://127.0.0.1:${entry('admin api ready')?.port}`,
      lines,
    };
  }

  function weft(
    cp: Cp,
    args: readonly string[],
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const { WEFT_TOKEN: _t, WEFT_SERVER: _s, FORCE_COLOR: _f, ...env } = process.env;
    return new Promise((resolve, reject) => {
      const child = spawn(WEFT, [...args, '--server', cp.admin, '--data-dir', cp.dataDir], {
        env: { ...env, NO_COLOR: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => {
        stdout += c.toString();
      });
      child.stderr.on('data', (c: Buffer) => {
        stderr += c.toString();
      });
      child.once('error', reject);
      child.once('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  it('with --no-tls makes no CA: no trust bundle anywhere, identity verbs say the CA is off', async () => {
    const cp = await startCp([], false);
    await expect(stat(join(cp.dataDir, BUNDLE_FILE))).rejects.toThrow(/ENOENT/);
    const list = await weft(cp, ['token', 'list']);
    expect(list.code).toBe(1);
    expect(list.stderr).toMatch(/the mesh CA is off: the control plane was started with --no-tls/);
    const usage = await new Promise<number | null>((resolve) =>
      spawn(WEFT, ['control-plane', '--no-tls', '--ca-cert', 'x.pem'], { stdio: 'ignore' }).once(
        'close',
        resolve,
      ),
    );
    expect(usage).toBe(2);
  });

  it('mints, lists and revokes tokens; serves the bundle; issues over TLS; rotates the root', async () => {
    const cp = await startCp(['--cert-ttl', '30s']);
    const bundleFile = await readFile(join(cp.dataDir, BUNDLE_FILE), 'utf8');

    const bundle = await weft(cp, ['ca', 'bundle']);
    expect(bundle.code).toBe(0);
    expect(bundle.stdout).toBe(bundleFile);

    const created = await weft(cp, ['token', 'create', '--service', 'web', '-n', 'shop', '--ttl', '1h']);
    expect(created.code, created.stderr).toBe(0);
    const token = created.stdout.trim();
    expect(token).toMatch(/^[0-9a-f]{16}\.[A-Za-z0-9_-]{43}$/);
    expect(created.stderr).toMatch(/ns\/shop\/sa\/web/);

    const client = new IdentityClient({ address: cp.grpc, bundlePem: bundle.stdout, token });
    cleanups.push(() => client.close());
    const id = await client.start();
    expect(id.spiffeId).toBe('spiffe://cluster.local/ns/shop/sa/web');
    expect(id.expiresAtMs - Date.now()).toBeLessThanOrEqual(30_000);
    expect((await opensslVerify(bundleFile, id.certChainPem)).code).toBe(0);

    const listed = await weft(cp, ['token', 'list', '-o', 'json']);
    const items = (JSON.parse(listed.stdout) as { items: { id: string; state: string }[] }).items;
    const tokenId = token.split('.')[0] as string;
    expect(items).toEqual([expect.objectContaining({ id: tokenId, state: 'active', namespace: 'shop' })]);
    expect(listed.stdout).not.toContain(token.split('.')[1]);

    const revoked = await weft(cp, ['token', 'revoke', tokenId]);
    expect(revoked.code).toBe(0);
    const table = await weft(cp, ['token', 'list']);
    expect(table.stdout).toMatch(new RegExp(`${tokenId}\\s+web\\s+ns/shop/sa/web\\s+\\S+\\s+revoked`));
    const again = new IdentityClient({ address: cp.grpc, bundlePem: bundle.stdout, token });
    cleanups.push(() => again.close());
    await expect(again.start()).rejects.toThrow(/revoked/);
    // The certificate renews without the (now revoked) token.
    await client.renewNow();

    const rotated = await weft(cp, ['ca', 'rotate', '--overlap', '10m', '--propagation', '0s', '-o', 'json']);
    expect(rotated.code, rotated.stderr).toBe(0);
    const statusAfter = JSON.parse(rotated.stdout) as { roots: { state: string }[] };
    expect(statusAfter.roots.map((r) => r.state)).toEqual(['active', 'retiring']);
    await until(
      async () => pemBlocks(await readFile(join(cp.dataDir, BUNDLE_FILE), 'utf8')).length === 2,
      'ca-bundle.pem with both roots',
    );
    const caStatus = await weft(cp, ['ca', 'status']);
    expect(caStatus.stdout).toMatch(/NOT encrypted at rest/);
    expect(caStatus.stdout).toMatch(/retiring at/);

    const unknown = await weft(cp, ['token', 'revoke', '0123456789abcdef']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/not found/);
  });
});
