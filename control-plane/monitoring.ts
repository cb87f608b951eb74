/**
 * Control-plane metrics beyond discovery's (discovery/metrics.ts) and the CA's (ca/service.ts),
 * registered on the process Registry that the monitoring port (15014) serves:
 *
 * - `weft_cp_config_revision` (gauge): the store revision of the mesh state this replica serves;
 * - `weft_cp_cert_expiry_timestamp_seconds{cert}` (gauge, Unix seconds): notAfter of the issuing
 *   CA (`cert="issuer"`), of the trust bundle's root that expires first (`cert="root"`) and of
 *   the control plane's serving certificate (`cert="serving"`); absent without the CA;
 * - `weft_cp_store_request_duration_seconds{op, result}` (histogram, seconds): latency of the
 *   store calls (op get | list | txn | revision | grant_lease; result ok | error), measured by
 *   `instrumentStore`.
 *
 * Gauges are read at scrape time (prom-client `collect`), so nothing runs between scrapes.
 * docs/metrics.md is the reference table.
 */
import { Gauge, Histogram, type Registry } from 'prom-client';
import type { CertificateAuthority } from './ca/authority.ts';
import type { ServingCertificate } from './ca/serving.ts';
import type { Store } from './store/types.ts';

/** Store latency buckets, seconds: 0.5 ms … 5 s (embedded store calls are sub-millisecond). */
export const STORE_DURATION_BUCKETS_S = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];

export interface ControlPlaneMetricSources {
  /** The store revision of the served mesh state. */
  readonly revision: () => number;
  /** The mesh CA (undefined without `--tls`). */
  readonly ca?: CertificateAuthority | undefined;
  readonly serving?: ServingCertificate | undefined;
}

const seconds = (rfc3339: string): number => Date.parse(rfc3339) / 1000;

/** Registers `weft_cp_config_revision` and `weft_cp_cert_expiry_timestamp_seconds` on `registry`. */
export function registerControlPlaneMetrics(registry: Registry, sources: ControlPlaneMetricSources): void {
  new Gauge({
    name: 'weft_cp_config_revision',
    help: 'Store revision of the mesh state this control-plane replica serves.',
    registers: [registry],
    collect() {
      this.set(sources.revision());
    },
  });
  const { ca, serving } = sources;
  if (ca === undefined) return;
  new Gauge({
    name: 'weft_cp_cert_expiry_timestamp_seconds',
    help: 'Expiry (notAfter, Unix seconds) of the issuing CA, the first-expiring trusted root and the serving certificate.',
    labelNames: ['cert'],
    registers: [registry],
    collect() {
      const status = ca.status();
      this.set({ cert: 'issuer' }, seconds(status.active.notAfter));
      const roots = status.roots.map((r) => seconds(r.notAfter));
      if (roots.length > 0) this.set({ cert: 'root' }, Math.min(...roots));
      try {
        if (serving !== undefined) this.set({ cert: 'serving' }, serving.current().expiresAtMs / 1000);
      } catch {
        // no serving certificate yet: the series is absent until the first one
      }
    },
  });
}

/**
 * A `Store` that times every request-shaped call into `weft_cp_store_request_duration_seconds`
 * (registered on `registry`); `watch` and `close` pass through untimed.
 */
export function instrumentStore(store: Store, registry: Registry): Store {
  const histogram = new Histogram({
    name: 'weft_cp_store_request_duration_seconds',
    help: 'Latency of control-plane store calls, in seconds, by operation and result.',
    labelNames: ['op', 'result'],
    buckets: STORE_DURATION_BUCKETS_S,
    registers: [registry],
  });
  const timed =
    <A extends unknown[], R>(op: string, call: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      const end = histogram.startTimer({ op });
      try {
        const value = await call(...args);
        end({ result: 'ok' });
        return value;
      } catch (err) {
        end({ result: 'error' });
        throw err;
      }
    };
  return {
    get: timed('get', (key) => store.get(key)),
    list: timed('list', (prefix) => store.list(prefix)),
    txn: timed('txn', (ops, conditions) => store.txn(ops, conditions)),
    revision: timed('revision', () => store.revision()),
    grantLease: timed('grant_lease', (ttl) => store.grantLease(ttl)),
    watch: (prefix, from, onEvents, onError) => store.watch(prefix, from, onEvents, onError),
    close: () => store.close(),
  };
}
