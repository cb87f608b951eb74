/**
 * Store availability as the control plane reports it: every `intervalMs` (default 2000) a
 * linearizable `revision()` read; the gauge `weft_cp_store_available` is 1 while it succeeds
 * and 0 while it throws `StoreUnavailableError` (etcd unreachable or without quorum). Each change
 * is logged once: `store unavailable: the control plane is read-only` (warn, with the cause),
 * then `store available again` (info). While unavailable the control plane keeps serving reads
 * and its connected proxies keep their config; writes get 503 (api/server.ts).
 */
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import { type Store, StoreUnavailableError } from './types.ts';

/** Starts the probe; returns the function that stops it. */
export function watchStoreHealth(
  store: Store,
  options: { logger: Logger; registry: Registry; intervalMs?: number },
): () => void {
  const log = options.logger.child({ component: 'store' });
  let available = true;
  const gauge = new Gauge({
    name: 'weft_cp_store_available',
    help: 'Whether the store answers linearizable reads (1) or not (0: etcd unreachable or without quorum; the control plane is read-only)',
    registers: [options.registry],
  });
  gauge.set(1);
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    store.revision().then(
      () => {
        running = false;
        if (!available) log.info('store available again');
        available = true;
        gauge.set(1);
      },
      (err: unknown) => {
        running = false;
        if (!(err instanceof StoreUnavailableError)) return;
        if (available) log.warn({ cause: err.message }, 'store unavailable: the control plane is read-only');
        available = false;
        gauge.set(0);
      },
    );
  }, options.intervalMs ?? 2000);
  timer.unref();
  return () => clearInterval(timer);
}
