/**
 * Where a proxy's log lines go: stdout through sonic-boom (pino's asynchronous destination) with
 * a bounded buffer, so that a log reader that stops reading (a full pipe, a FIFO nobody reads)
 * or a destination that fails (disk full: ENOSPC, a closed pipe: EPIPE) never blocks or crashes
 * the proxy: lines that do not fit in the buffer are dropped and counted, failed writes are
 * counted and retried with the next line. Requests are never affected.
 *
 * Figures: `weft_log_dropped_lines_total` and `weft_log_write_errors_total`, registered by
 * `registerLogMetrics`. The buffer bound is 1 MiB, or `WEFT_LOG_MAX_BUFFER_BYTES` from the
 * environment (a positive integer).
 */
import pino from 'pino';
import { Counter, type Registry } from 'prom-client';

/** Log bytes held while the destination does not take them; beyond, lines are dropped. */
export const MAX_BUFFERED_BYTES = maxBufferedBytes(process.env.WEFT_LOG_MAX_BUFFER_BYTES);

function maxBufferedBytes(value: string | undefined): number {
  const n = Number(value);
  return Number.isInteger(n) && n > 0 ? n : 1024 * 1024;
}

const counts = { dropped: 0, errors: 0 };

/** Lines dropped and write errors so far (process-wide). */
export function logDropCounts(): { readonly dropped: number; readonly errors: number } {
  return { ...counts };
}

/**
 * A pino destination on file descriptor `fd` (default 1, stdout): asynchronous unless `sync`,
 * buffer bounded to `MAX_BUFFERED_BYTES`, drops and write errors counted instead of thrown.
 */
export function logDestination(fd = 1, sync = false): pino.DestinationStream {
  const dest = pino.destination({ dest: fd, sync, maxLength: MAX_BUFFERED_BYTES });
  dest.on('drop', () => {
    counts.dropped++;
  });
  dest.on('error', () => {
    counts.errors++;
  });
  return dest;
}

/** Registers `weft_log_dropped_lines_total` and `weft_log_write_errors_total` on `registry`. */
export function registerLogMetrics(registry: Registry): void {
  new Counter({
    name: 'weft_log_dropped_lines_total',
    help: 'Log lines dropped because the log destination did not take them (blocked or failing)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(counts.dropped);
    },
  });
  new Counter({
    name: 'weft_log_write_errors_total',
    help: 'Failed writes to the log destination (e.g. ENOSPC, EPIPE); the lines are retried or dropped',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(counts.errors);
    },
  });
}
