/**
 * Discovery metrics (prom-client), registered on the Registry the caller passes:
 * - `weft_cp_connected_proxies` (gauge): streams past their Hello on this replica;
 * - `weft_cp_pushes_total{type="snapshot", result}` (counter): snapshots pushed; result `ok`
 *   (written to the stream) or `error` (the write failed: the stream is gone);
 * - `weft_cp_nacks_total{type="snapshot"}` (counter): pushes the proxy rejected (NACK). A push's
 *   final fate arrives later than its send, so rejections are their own counter (as istiod's
 *   `pilot_total_xds_rejects`) rather than a `result` of the push;
 * - `weft_cp_push_duration_seconds` (histogram, seconds): from a send to its ACK.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Push → ACK latency buckets, seconds (OTel's advised HTTP buckets). */
export const PUSH_DURATION_BUCKETS_S = [
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
];

export class DiscoveryMetrics {
  readonly connected: Gauge;
  readonly pushes: Counter<'type' | 'result'>;
  readonly nacks: Counter<'type'>;
  readonly pushDuration: Histogram;

  constructor(registry: Registry) {
    this.connected = new Gauge({
      name: 'weft_cp_connected_proxies',
      help: 'Proxies with an open discovery stream on this control-plane replica.',
      registers: [registry],
    });
    this.pushes = new Counter({
      name: 'weft_cp_pushes_total',
      help: 'Config pushes to proxies, by type and result (ok: written to the stream; error: the write failed).',
      labelNames: ['type', 'result'],
      registers: [registry],
    });
    this.nacks = new Counter({
      name: 'weft_cp_nacks_total',
      help: 'Config pushes rejected (NACKed) by proxies, by type.',
      labelNames: ['type'],
      registers: [registry],
    });
    // Exported from the start (0), so `rate(weft_cp_nacks_total[…])` is 0 rather than absent.
    this.nacks.inc({ type: 'snapshot' }, 0);
    this.pushDuration = new Histogram({
      name: 'weft_cp_push_duration_seconds',
      help: 'Time from sending a snapshot to receiving its ACK, in seconds.',
      buckets: PUSH_DURATION_BUCKETS_S,
      registers: [registry],
    });
  }
}
