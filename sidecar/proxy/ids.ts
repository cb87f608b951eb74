/**
 * Random identifiers for the hot path: request ids (UUID v4, RFC 9562 §5.4) and W3C Trace
 * Context ids (trace-id: 16 bytes, parent-id: 8 bytes, lower-case hex, never all zero).
 * Random bytes are drawn from `crypto.randomFillSync` in 4 KiB batches, so one request costs
 * no system call.
 */
import { randomFillSync, randomUUID } from 'node:crypto';

const POOL_BYTES = 4096;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let offset = POOL_BYTES;

function take(n: number): Buffer {
  if (offset + n > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const out = pool.subarray(offset, offset + n);
  offset += n;
  return out;
}

/** A random hex id of `bytes` bytes (2 × bytes hex characters), never all zeros. */
export function randomHexId(bytes: 8 | 16): string {
  const hex = take(bytes).toString('hex');
  return /^0+$/.test(hex) ? randomHexId(bytes) : hex;
}

/** A random UUID v4 for `x-request-id`. */
export function requestId(): string {
  return randomUUID();
}
