/**
 * `CertificateAuthority`: the mesh CA, kept in the store so that every control-plane replica on
 * one etcd shares it.
 *
 *   /weft/system/ca             CaRecord: the active signing authority (certificate, intermediates,
 *                               root, private key — sealed with AES-256-GCM when an encryption key
 *                               is configured, else PEM) and the roots being retired, with when
 *   /weft/system/trust-bundle   TrustBundle { trustDomain, rootsPem }: the active root first, then
 *                               every retiring root
 *
 * - First start: the first replica creates the CA (a generated root, or the operator's CA) with a
 *   conditional transaction (the key must not exist); the others lose the race and load it.
 * - Every change to the two records is one conditional transaction on both keys' revisions
 *   (retried on conflict), and the bundle is always recomputed from the record and the trust
 *   domain, so the two never disagree. Each replica watches them: a rotation, retirement or trust
 *   domain change made by any replica takes effect in all.
 * - Rotation (`rotate`) is staged, so that no proxy ever meets a certificate from a root it does not
 *   trust yet: the new root joins the bundle as `pending` at once (every proxy gets it with its next
 *   push) and issuance switches to it only `propagationMs` later (`activateAtMs`, in the store:
 *   whichever replica's timer fires first activates it). Then the old root is recorded as retiring
 *   and leaves the bundle `overlapMs` after the switch (`retireAtMs`), when every leaf it signed
 *   has expired. From the start of the rotation to the retirement both roots verify.
 * - The trust domain and default certificate TTL come from the MeshConfig `default`
 *   (spec.trustDomain, default cluster.local; spec.certificateTtl, default 24h), read at issuance.
 * - The CA private key never leaves this process: it is decrypted into memory only.
 *
 * Spec: SPIFFE X.509-SVID and trust bundles (several roots per trust domain during rotation);
 * RFC 5280.
 */
import { X509Certificate } from 'node:crypto';
import forge from 'node-forge';
import pino, { type Logger } from 'pino';
import { parseDurationMs } from '../resources/duration.ts';
import { CA_KEY, RESOURCES, resourceKey, SYSTEM, TRUST_BUNDLE_KEY } from '../store/keys.ts';
import { type Store, TxnConflictError, type TxnOp, type Watcher } from '../store/types.ts';
import { parseTrustBundle, type TrustBundle } from './bundle.ts';
import { csrPublicKey, signLeaf } from './issue.ts';
import { openKey, type StoredKey, sealKey } from './keystore.ts';
import {
  type CertSummary,
  createRootCa,
  describeCert,
  type ForgeSigner,
  fingerprint,
  forgeSigner,
  PathError,
  type ProvidedCaMaterial,
  ROOT_VALIDITY_MS,
  verifyPath,
} from './pki.ts';
import {
  formatSpiffeId,
  isTrustDomain,
  parseSpiffeId,
  type SpiffeId,
  uriSanOf,
  type WorkloadIdentity,
} from './spiffe.ts';

/** Trust domain when MeshConfig does not set one. */
export const DEFAULT_TRUST_DOMAIN = 'cluster.local';
/** Workload certificate lifetime when MeshConfig does not set one, milliseconds (24 h). */
export const DEFAULT_CERT_TTL_MS = 24 * 3600 * 1000;
/** The control plane's own identity (its serving certificate's SPIFFE ID). */
export const CONTROL_PLANE_IDENTITY: WorkloadIdentity = {
  namespace: 'weft-system',
  serviceAccount: 'control-plane',
};

/** One signing authority as stored. */
export interface StoredAuthority {
  /** SHA-256 fingerprint of `certPem`. */
  readonly id: string;
  /** The issuing CA certificate (a root, or an operator's intermediate). */
  readonly certPem: string;
  /** Intermediates above `certPem`, nearest first, excluding the root. */
  readonly chainPem: readonly string[];
  /** The root `certPem` chains to (`certPem` itself for a root). */
  readonly rootPem: string;
  readonly key: StoredKey;
  /** True for an operator-provided CA. */
  readonly provided: boolean;
  readonly createdAtMs: number;
}

/** A root on its way out of the bundle. */
export interface RetiringRoot {
  readonly rootPem: string;
  /** The retired authority's intermediate certificates, to verify its leaves until retirement. */
  readonly intermediatesPem: readonly string[];
  /** When the root leaves the bundle, ms since the epoch. */
  readonly retireAtMs: number;
}

/** A new authority whose root is already trusted but which does not issue yet. */
export interface PendingAuthority {
  readonly authority: StoredAuthority;
  /** When issuance switches to it, ms since the epoch. */
  readonly activateAtMs: number;
  /** How long the then-active root stays in the bundle after the switch, ms. */
  readonly overlapMs: number;
}

/** `/weft/system/ca`. */
export interface CaRecord {
  readonly version: 1;
  readonly active: StoredAuthority;
  /** A rotation in progress (see `rotate`); absent otherwise. */
  readonly pending?: PendingAuthority;
  readonly retiring: readonly RetiringRoot[];
}

/** Default time between a rotation's start and the switch of issuance to the new root, ms. */
export const DEFAULT_PROPAGATION_MS = 30_000;

/** Identity settings of the mesh, from MeshConfig `default`. */
export interface MeshIdentitySettings {
  readonly trustDomain: string;
  /** Workload certificate lifetime, milliseconds. */
  readonly certTtlMs: number;
}

/** A certificate issued to a workload: the fields of `weft.v1.IssueResponse`, plus the serial. */
export interface IssuedCertificate {
  /** Leaf first, then the intermediates (not the root), PEM. */
  readonly certificateChainPem: string;
  readonly trustBundlePem: readonly string[];
  readonly spiffeId: string;
  /** Leaf notAfter, ms since the epoch. */
  readonly expiresAtMs: number;
  readonly trustDomain: string;
  /** Lower-case hex. */
  readonly serialNumber: string;
}

/** What `status` reports (admin API `GET /v1/ca`). */
export interface CaStatus {
  readonly trustDomain: string;
  /** True when the stored CA key is sealed with the operator's encryption key. */
  readonly keyEncrypted: boolean;
  /** The issuing CA. */
  readonly active: CertSummary & { readonly provided: boolean; readonly intermediate: boolean };
  /** Every root of the trust bundle. */
  readonly roots: readonly (CertSummary & {
    /** `pending`: trusted, issuing from `activateAt`; `retiring`: trusted until `retireAt`. */
    readonly state: 'active' | 'pending' | 'retiring';
    readonly activateAt?: string;
    readonly retireAt?: string;
  })[];
}

/** The CA cannot issue now (its key cannot be opened, or its record is gone). */
export class CaUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CaUnavailableError';
  }
}

/** A request the CA refuses (e.g. rotating an operator-provided CA). */
export class CaRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CaRefusedError';
  }
}

export interface CertificateAuthorityOptions {
  readonly store: Store;
  readonly logger?: Logger;
  /** 32-byte AES-256-GCM key that seals the CA private key at rest; without it the key is stored as PEM (warned). */
  readonly encryptionKey?: Buffer;
  /** An operator-provided CA (checked with `checkProvidedCa`); without it a root is generated on first start. */
  readonly provided?: ProvidedCaMaterial;
  /** Overrides MeshConfig spec.certificateTtl, milliseconds (tests: a few seconds). */
  readonly certTtlMs?: number;
  /** Validity of generated roots, milliseconds (default 10 years). */
  readonly rootValidityMs?: number;
  /** Clock, ms since the epoch (default Date.now). */
  readonly now?: () => number;
}

/**
 * The identity settings in the store: MeshConfig `default` spec.trustDomain and
 * spec.certificateTtl, with their defaults; `certTtlOverrideMs` wins over the stored TTL.
 * Values that do not parse fall back to the defaults.
 */
export async function readMeshSettings(
  store: Store,
  certTtlOverrideMs?: number,
): Promise<MeshIdentitySettings> {
  const kv = await store.get(resourceKey('MeshConfig', 'default', 'default'));
  let trustDomain = DEFAULT_TRUST_DOMAIN;
  let certTtlMs = DEFAULT_CERT_TTL_MS;
  if (kv !== undefined) {
    try {
      const spec = (JSON.parse(kv.value) as { spec?: { trustDomain?: unknown; certificateTtl?: unknown } })
        .spec;
      if (typeof spec?.trustDomain === 'string' && isTrustDomain(spec.trustDomain))
        trustDomain = spec.trustDomain;
      if (typeof spec?.certificateTtl === 'string') certTtlMs = parseDurationMs(spec.certificateTtl);
    } catch {
      // an unreadable MeshConfig means the defaults
    }
  }
  return { trustDomain, certTtlMs: certTtlOverrideMs ?? certTtlMs };
}

/** Parses `/weft/system/ca`. @throws Error when the value is not a CA record. */
export function parseCaRecord(value: string): CaRecord {
  const r = JSON.parse(value) as Partial<CaRecord>;
  const a = r.active as Partial<StoredAuthority> | undefined;
  if (
    r.version !== 1 ||
    a === undefined ||
    typeof a.id !== 'string' ||
    typeof a.certPem !== 'string' ||
    typeof a.rootPem !== 'string' ||
    !Array.isArray(a.chainPem) ||
    typeof a.key !== 'object' ||
    !Array.isArray(r.retiring)
  ) {
    throw new Error(`${CA_KEY} does not hold a CA record`);
  }
  return r as CaRecord;
}

/** The bundle a record implies: the active root, the pending one, then each retiring root, once each. */
export function bundleFor(record: CaRecord, trustDomain: string): TrustBundle {
  const rootsPem: string[] = [];
  const pending = record.pending === undefined ? [] : [record.pending.authority.rootPem];
  for (const pem of [record.active.rootPem, ...pending, ...record.retiring.map((r) => r.rootPem)]) {
    if (!rootsPem.includes(pem)) rootsPem.push(pem);
  }
  return { trustDomain, rootsPem };
}

/**
 * `record` with its pending authority made the issuing one at `nowMs`: the old active root
 * joins the retiring roots until `nowMs + overlapMs`.
 */
function activated(record: CaRecord, nowMs: number): CaRecord {
  const pending = record.pending;
  if (pending === undefined) return record;
  const old = record.active;
  return {
    version: 1,
    active: pending.authority,
    retiring: [
      ...record.retiring.filter((r) => r.rootPem !== old.rootPem && r.rootPem !== pending.authority.rootPem),
      ...(old.rootPem === pending.authority.rootPem
        ? []
        : [
            {
              rootPem: old.rootPem,
              intermediatesPem: intermediatesOf(old),
              retireAtMs: nowMs + pending.overlapMs,
            },
          ]),
    ],
  };
}

/** The intermediates of an authority: its own certificate when it is not the root, then its chain. */
function intermediatesOf(a: Pick<StoredAuthority, 'certPem' | 'chainPem' | 'rootPem'>): string[] {
  return a.certPem === a.rootPem ? [...a.chainPem] : [a.certPem, ...a.chainPem];
}

interface ActiveSigner {
  readonly authority: StoredAuthority;
  readonly signer: ForgeSigner;
}

export class CertificateAuthority {
  readonly #store: Store;
  readonly #log: Logger;
  readonly #encryptionKey: Buffer | undefined;
  readonly #certTtlOverrideMs: number | undefined;
  readonly #rootValidityMs: number;
  readonly #now: () => number;
  readonly #listeners = new Set<() => void>();
  #record: CaRecord | undefined;
  #bundle: TrustBundle = { trustDomain: DEFAULT_TRUST_DOMAIN, rootsPem: [] };
  #roots: X509Certificate[] = [];
  #intermediates: X509Certificate[] = [];
  #active: ActiveSigner | undefined;
  #unavailable: string | undefined;
  #watchers: Watcher[] = [];
  #retireTimer: NodeJS.Timeout | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(options: CertificateAuthorityOptions) {
    this.#store = options.store;
    this.#log = (options.logger ?? pino({ level: 'silent' })).child({ component: 'ca' });
    this.#encryptionKey = options.encryptionKey;
    this.#certTtlOverrideMs = options.certTtlMs;
    this.#rootValidityMs = options.rootValidityMs ?? ROOT_VALIDITY_MS;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Loads the CA from the store, creating it when this is the first replica (see the module
   * comment), and starts following changes made by other replicas.
   * @throws KeyStoreError when the stored key is encrypted and no (or another) encryption key is
   * given; Error when the stored record is malformed or the store fails.
   */
  static async open(options: CertificateAuthorityOptions): Promise<CertificateAuthority> {
    const ca = new CertificateAuthority(options);
    await ca.#bootstrap(options.provided);
    return ca;
  }

  /** The current trust bundle (the active root first). */
  bundle(): TrustBundle {
    return this.#bundle;
  }

  /** Fingerprint of the issuing CA certificate. */
  activeId(): string | undefined {
    return this.#active?.authority.id;
  }

  /**
   * Calls `listener` after the bundle or the issuing CA changed (rotation, retirement, trust
   * domain, another replica's change). Returns a function that unregisters it.
   */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The mesh's identity settings now (MeshConfig, with this CA's TTL override). */
  settings(): Promise<MeshIdentitySettings> {
    return readMeshSettings(this.#store, this.#certTtlOverrideMs);
  }

  /**
   * Issues a workload certificate for `identity` (already authenticated) to the key of the PEM
   * PKCS#10 request `csrPem`; the request's names are ignored.
   * @throws CsrError for a bad request; CaUnavailableError when the CA cannot sign.
   */
  async issue(csrPem: string, identity: WorkloadIdentity): Promise<IssuedCertificate> {
    return this.#issue(csrPublicKey(csrPem), identity, {});
  }

  /**
   * Issues a certificate to the SPKI PEM `publicKeyPem` for `identity` with extra DNS and IP SANs
   * (the control plane's serving certificate).
   * @throws CaUnavailableError when the CA cannot sign; Error for a bad key or address.
   */
  async issueForKey(
    publicKeyPem: string,
    identity: WorkloadIdentity,
    sans: { readonly dnsNames?: readonly string[]; readonly ipAddresses?: readonly string[] } = {},
  ): Promise<IssuedCertificate> {
    return this.#issue(forge.pki.publicKeyFromPem(publicKeyPem), identity, sans);
  }

  /**
   * Checks a peer's DER certificate: a leaf, valid now, chaining to a root of the current bundle
   * (through this CA's intermediates), with one URI SAN that is a Weft SPIFFE ID in this trust
   * domain. Returns that ID.
   * @throws PathError or SpiffeIdError naming the failure.
   */
  verifyPeer(certDer: Buffer): SpiffeId {
    const cert = new X509Certificate(certDer);
    if (cert.ca) throw new PathError('a CA certificate cannot authenticate a workload');
    verifyPath(cert, this.#intermediates, this.#roots, this.#now());
    const uri = uriSanOf(cert.subjectAltName);
    if (uri === undefined) throw new PathError('the certificate has no SPIFFE ID (URI SAN)');
    const id = parseSpiffeId(uri);
    if (id.trustDomain !== this.#bundle.trustDomain) {
      throw new PathError(
        `the certificate is for trust domain ${id.trustDomain}, not ${this.#bundle.trustDomain}`,
      );
    }
    return id;
  }

  /**
   * Rotates the root in stages (see the module comment): creates a new root and adds it to the
   * bundle now; issuance switches to it `propagationMs` from now (default 30 s, time for every
   * proxy to receive the new bundle; 0 switches at once); the old root leaves the bundle
   * `overlapMs` after the switch (default: the current certificate TTL, so every leaf of the old
   * root expires before its root goes).
   * @throws CaRefusedError when the CA is operator-provided (rotate it by restarting with new
   * files), a rotation is already pending, or a duration is negative; Error on store failures.
   */
  rotate(overlapMs?: number, propagationMs: number = DEFAULT_PROPAGATION_MS): Promise<CaStatus> {
    return this.#enqueue(async () => {
      if (this.#record?.active.provided) {
        throw new CaRefusedError(
          'the CA is operator-provided: rotate it by restarting the control plane with new --ca-cert/--ca-key files',
        );
      }
      if (this.#record?.pending !== undefined) {
        throw new CaRefusedError(
          `a rotation is already in progress: the new root issues from ${new Date(this.#record.pending.activateAtMs).toISOString()}`,
        );
      }
      const settings = await this.settings();
      const overlap = overlapMs ?? settings.certTtlMs;
      if (!(overlap >= 0)) throw new CaRefusedError('overlap must not be negative');
      if (!(propagationMs >= 0)) throw new CaRefusedError('propagation must not be negative');
      const next = await this.#generateAuthority();
      let activateAtMs = 0;
      await this.#mutate('rotate', settings.trustDomain, (current) => {
        if (current === undefined) throw new CaUnavailableError(`${CA_KEY} is missing`);
        activateAtMs = this.#now() + propagationMs;
        const staged: CaRecord = {
          ...current,
          pending: { authority: next, activateAtMs, overlapMs: overlap },
        };
        return propagationMs === 0 ? activated(staged, this.#now()) : staged;
      });
      await this.#reload();
      this.#log.info(
        {
          next: describeCert(next.certPem).subject,
          activateAt: new Date(activateAtMs).toISOString(),
          overlapMs: overlap,
        },
        'root rotation started: the new root is in the bundle and issues from activateAt; the old root stays for the overlap after that',
      );
      return this.status();
    });
  }

  /**
   * Applies every rotation step whose time has come: a pending root whose `activateAtMs` passed
   * becomes the issuing one, and retiring roots whose `retireAtMs` passed leave the bundle (the
   * timer calls this; so may tests with an injected clock). Resolves with how many roots were
   * removed from the bundle.
   */
  retireDue(): Promise<number> {
    return this.#enqueue(async () => {
      const now = this.#now();
      let removed = 0;
      let switched = false;
      const settings = await this.settings();
      await this.#mutate('retire', settings.trustDomain, (current) => {
        if (current === undefined) return current;
        const stepped =
          current.pending !== undefined && current.pending.activateAtMs <= now
            ? activated(current, now)
            : current;
        switched = stepped !== current;
        const kept = stepped.retiring.filter((r) => r.retireAtMs > now);
        removed = stepped.retiring.length - kept.length;
        return removed === 0 ? stepped : { ...stepped, retiring: kept };
      });
      await this.#reload();
      if (switched) this.#log.info('root rotation: issuing with the new root now');
      if (removed > 0) this.#log.info({ removed }, 'retired old root(s) from the trust bundle');
      return removed;
    });
  }

  /** The CA as the admin API reports it. */
  status(): CaStatus {
    const record = this.#record;
    if (record === undefined) throw new CaUnavailableError(`${CA_KEY} is missing`);
    const retireAt = new Map(record.retiring.map((r) => [r.rootPem, r.retireAtMs]));
    const pending = record.pending;
    return {
      trustDomain: this.#bundle.trustDomain,
      keyEncrypted: record.active.key.alg !== 'none',
      active: {
        ...describeCert(record.active.certPem),
        provided: record.active.provided,
        intermediate: record.active.certPem !== record.active.rootPem,
      },
      roots: this.#bundle.rootsPem.map((pem) => {
        if (pem === pending?.authority.rootPem && pem !== record.active.rootPem) {
          return {
            ...describeCert(pem),
            state: 'pending' as const,
            activateAt: new Date(pending.activateAtMs).toISOString(),
          };
        }
        const at = pem === record.active.rootPem ? undefined : retireAt.get(pem);
        return {
          ...describeCert(pem),
          state: at === undefined ? ('active' as const) : ('retiring' as const),
          ...(at !== undefined && { retireAt: new Date(at).toISOString() }),
        };
      }),
    };
  }

  /** Stops following the store and the retirement timer. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#retireTimer !== undefined) clearTimeout(this.#retireTimer);
    const watchers = this.#watchers.splice(0);
    await Promise.all(watchers.map((w) => w.close()));
    await this.#queue.catch(() => undefined);
  }

  async #issue(
    publicKey: forge.pki.rsa.PublicKey,
    identity: WorkloadIdentity,
    sans: { readonly dnsNames?: readonly string[]; readonly ipAddresses?: readonly string[] },
  ): Promise<IssuedCertificate> {
    const active = this.#active;
    if (active === undefined) throw new CaUnavailableError(this.#unavailable ?? 'the CA is not loaded');
    const settings = await this.settings();
    if (settings.trustDomain !== this.#bundle.trustDomain) this.#syncTrustDomain();
    const spiffeId = formatSpiffeId(settings.trustDomain, identity);
    const leaf = signLeaf(active.signer, {
      publicKey,
      spiffeId,
      commonName: parseSpiffeId(spiffeId).path,
      ttlMs: settings.certTtlMs,
      nowMs: this.#now(),
      ...(sans.dnsNames !== undefined && { dnsNames: sans.dnsNames }),
      ...(sans.ipAddresses !== undefined && { ipAddresses: sans.ipAddresses }),
    });
    return {
      certificateChainPem: [leaf.certPem, ...intermediatesOf(active.authority)].join(''),
      trustBundlePem: [...this.#bundle.rootsPem],
      spiffeId,
      expiresAtMs: leaf.notAfterMs,
      trustDomain: settings.trustDomain,
      serialNumber: leaf.serialNumber,
    };
  }

  async #bootstrap(provided: ProvidedCaMaterial | undefined): Promise<void> {
    const revision = await this.#store.revision();
    const settings = await this.settings();
    let candidate: StoredAuthority | undefined;
    if (provided !== undefined)
      candidate = this.#authorityOf(provided.certPem, provided.keyPem, provided, true);
    else if ((await this.#store.get(CA_KEY)) === undefined) candidate = await this.#generateAuthority();

    let created = false;
    await this.#mutate('bootstrap', settings.trustDomain, (current) => {
      created = false;
      if (current === undefined) {
        if (candidate === undefined) throw new Error(`${CA_KEY} disappeared during start-up; start again`);
        created = true;
        return { version: 1, active: candidate, retiring: [] };
      }
      let next = current;
      if (provided !== undefined && candidate !== undefined && current.active.id !== candidate.id) {
        // The operator's CA replaces the stored one; the old root stays for one certificate TTL.
        const retireAtMs = this.#now() + settings.certTtlMs;
        next = {
          version: 1,
          active: candidate,
          retiring: [
            ...current.retiring.filter(
              (r) => r.rootPem !== current.active.rootPem && r.rootPem !== candidate.rootPem,
            ),
            ...(current.active.rootPem === candidate.rootPem
              ? []
              : [
                  {
                    rootPem: current.active.rootPem,
                    intermediatesPem: intermediatesOf(current.active),
                    retireAtMs,
                  },
                ]),
          ],
        };
      }
      if (this.#encryptionKey !== undefined && next.active.key.alg === 'none') {
        const keyPem = openKey(next.active.key, next.active.id);
        next = {
          ...next,
          active: { ...next.active, key: sealKey(keyPem, next.active.id, this.#encryptionKey) },
        };
      }
      return next;
    });
    await this.#reload();
    const record = this.#record as CaRecord;
    this.#log.info(
      {
        created,
        provided: record.active.provided,
        subject: describeCert(record.active.certPem).subject,
        trustDomain: this.#bundle.trustDomain,
        roots: this.#bundle.rootsPem.length,
      },
      created ? 'mesh CA created' : 'mesh CA loaded',
    );
    if (record.active.key.alg === 'none') {
      this.#log.warn(
        'the CA private key is stored unencrypted in the store; pass --ca-encryption-key-file to encrypt it at rest',
      );
    }
    await this.#watch(revision + 1);
  }

  async #watch(fromRevision: number): Promise<void> {
    const onError = (err: Error): void => {
      if (this.#closed) return;
      this.#log.warn({ err }, 'CA watch ended; restarting it');
      void this.#enqueue(async () => {
        await Promise.all(this.#watchers.splice(0).map((w) => w.close().catch(() => undefined)));
        const revision = await this.#store.revision();
        await this.#reload();
        await this.#watch(revision + 1);
      }).catch((e: unknown) => this.#log.error({ err: e }, 'cannot restart the CA watch'));
    };
    this.#watchers.push(
      await this.#store.watch(
        SYSTEM,
        fromRevision,
        (events) => {
          if (events.some((e) => e.key === CA_KEY || e.key === TRUST_BUNDLE_KEY)) this.#reloadSoon();
        },
        onError,
      ),
      await this.#store.watch(
        `${RESOURCES}MeshConfig/`,
        fromRevision,
        () => this.#syncTrustDomain(),
        onError,
      ),
    );
  }

  /** Re-reads the records (after a change by anyone); errors are logged, not thrown. */
  #reloadSoon(): void {
    if (this.#closed) return;
    this.#enqueue(() => this.#reload()).catch((err: unknown) => {
      this.#log.error({ err }, 'cannot reload the CA from the store');
    });
  }

  /** Brings the bundle's trust domain in line with MeshConfig (any replica may; conflicts are benign). */
  #syncTrustDomain(): void {
    if (this.#closed) return;
    this.#enqueue(async () => {
      const settings = await this.settings();
      if (settings.trustDomain === this.#bundle.trustDomain) return;
      await this.#mutate('trust domain', settings.trustDomain, (current) => current);
      await this.#reload();
      this.#log.info({ trustDomain: settings.trustDomain }, 'trust domain changed');
    }).catch((err: unknown) => this.#log.error({ err }, 'cannot update the trust domain of the bundle'));
  }

  /**
   * Reads both records and commits `compute(record)` plus the bundle it implies, conditionally
   * on both keys' revisions; retries on conflict. Writes nothing when nothing changed.
   */
  async #mutate(
    label: string,
    trustDomain: string,
    compute: (current: CaRecord | undefined) => CaRecord | undefined,
  ): Promise<void> {
    for (let attempt = 0; attempt < 16; attempt++) {
      const [caKv, bundleKv] = await Promise.all([
        this.#store.get(CA_KEY),
        this.#store.get(TRUST_BUNDLE_KEY),
      ]);
      const record = compute(caKv === undefined ? undefined : parseCaRecord(caKv.value));
      if (record === undefined) return;
      const recordJson = JSON.stringify(record);
      const bundleJson = JSON.stringify(bundleFor(record, trustDomain));
      const ops: TxnOp[] = [];
      if (caKv?.value !== recordJson) ops.push({ op: 'put', key: CA_KEY, value: recordJson });
      if (bundleKv?.value !== bundleJson) ops.push({ op: 'put', key: TRUST_BUNDLE_KEY, value: bundleJson });
      if (ops.length === 0) return;
      try {
        await this.#store.txn(ops, [
          { key: CA_KEY, modRevision: caKv?.modRevision ?? 0 },
          { key: TRUST_BUNDLE_KEY, modRevision: bundleKv?.modRevision ?? 0 },
        ]);
        return;
      } catch (err) {
        if (!(err instanceof TxnConflictError)) throw err;
        this.#log.debug({ label, attempt }, 'CA record changed concurrently; retrying');
      }
    }
    throw new Error(`${label}: the CA record kept changing under concurrent writers`);
  }

  /** Loads the records into memory; opens the signing key when the issuing CA changed. */
  async #reload(): Promise<void> {
    const [caKv, bundleKv] = await Promise.all([this.#store.get(CA_KEY), this.#store.get(TRUST_BUNDLE_KEY)]);
    if (caKv === undefined) {
      this.#active = undefined;
      this.#unavailable = `${CA_KEY} is missing from the store`;
      this.#log.error(this.#unavailable);
      return;
    }
    const record = parseCaRecord(caKv.value);
    const bundle = (bundleKv && parseTrustBundle(bundleKv.value)) ?? bundleFor(record, DEFAULT_TRUST_DOMAIN);
    const before = `${this.#active?.authority.id}|${JSON.stringify(this.#bundle)}`;
    if (
      this.#active?.authority.id !== record.active.id ||
      JSON.stringify(this.#active.authority.key) !== JSON.stringify(record.active.key)
    ) {
      try {
        const keyPem = openKey(record.active.key, record.active.id, this.#encryptionKey);
        this.#active = { authority: record.active, signer: forgeSigner(record.active.certPem, keyPem) };
        this.#unavailable = undefined;
      } catch (err) {
        this.#active = undefined;
        this.#unavailable = (err as Error).message;
        throw err;
      }
    }
    this.#record = record;
    this.#bundle = bundle;
    this.#roots = bundle.rootsPem.map((pem) => new X509Certificate(pem));
    this.#intermediates = [
      ...intermediatesOf(record.active),
      ...(record.pending === undefined ? [] : intermediatesOf(record.pending.authority)),
      ...record.retiring.flatMap((r) => r.intermediatesPem),
    ].map((pem) => new X509Certificate(pem));
    this.#scheduleRetirement();
    if (`${this.#active?.authority.id}|${JSON.stringify(this.#bundle)}` !== before) {
      for (const listener of this.#listeners) {
        try {
          listener();
        } catch (err) {
          this.#log.error({ err }, 'CA change listener failed');
        }
      }
    }
  }

  #scheduleRetirement(): void {
    if (this.#retireTimer !== undefined) clearTimeout(this.#retireTimer);
    this.#retireTimer = undefined;
    const next = Math.min(
      ...(this.#record?.retiring ?? []).map((r) => r.retireAtMs),
      this.#record?.pending?.activateAtMs ?? Number.POSITIVE_INFINITY,
    );
    if (this.#closed || !Number.isFinite(next)) return;
    const delay = Math.min(Math.max(0, next - this.#now()), 2 ** 31 - 1);
    this.#retireTimer = setTimeout(() => {
      this.#retireTimer = undefined;
      this.retireDue().catch((err: unknown) =>
        this.#log.error({ err }, 'cannot apply the due rotation step (activation or retirement)'),
      );
    }, delay);
    this.#retireTimer.unref();
  }

  async #generateAuthority(): Promise<StoredAuthority> {
    const root = await createRootCa(this.#now(), this.#rootValidityMs);
    return this.#authorityOf(root.certPem, root.keyPem, { chainPem: [], rootPem: root.certPem }, false);
  }

  #authorityOf(
    certPem: string,
    keyPem: string,
    chain: Pick<ProvidedCaMaterial, 'chainPem' | 'rootPem'>,
    provided: boolean,
  ): StoredAuthority {
    const id = fingerprint(certPem);
    return {
      id,
      certPem,
      chainPem: [...chain.chainPem],
      rootPem: chain.rootPem,
      key: sealKey(keyPem, id, this.#encryptionKey),
      provided,
      createdAtMs: this.#now(),
    };
  }

  #enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}
