/**
 * Splices two connected sockets into one byte stream each way: the bytes of TCP proxying and of an
 * upgraded HTTP connection (WebSocket, RFC 9110 §7.8).
 *
 * Guarantees:
 * - backpressure both ways: a side whose peer's write buffer is full is paused until 'drain';
 * - half-close: one side's FIN (its 'end') ends the other side's write side only; the opposite
 *   direction keeps flowing until its own FIN (both sockets must be `allowHalfOpen`);
 * - an error on either side, or a socket closing before both of its directions finished,
 *   destroys both (a reset stays a reset);
 * - idle timeout: `idleTimeoutMs` without a byte either way (reads and writes both count) destroys
 *   both sides; `reason` is then `idle_timeout`;
 * - `onEnd` is called exactly once, after both sockets closed, with the byte counts;
 * - byte counts can be read while the splice runs (`receivedBytes` from the downstream,
 *   `sentBytes` to it), for periodic metrics.
 */
import type { Socket } from 'node:net';

/** Why a splice ended: both sides closed normally, it was idle too long, or a side failed. */
export type SpliceEndReason = 'closed' | 'idle_timeout' | 'error';

export interface SpliceResult {
  readonly reason: SpliceEndReason;
  /** Bytes read from the downstream and written upstream. */
  readonly receivedBytes: number;
  /** Bytes read from the upstream and written downstream. */
  readonly sentBytes: number;
}

/** A running splice; see the module header. */
export class Splice {
  readonly #down: Socket;
  readonly #up: Socket;
  readonly #onEnd: (result: SpliceResult) => void;
  #received = 0;
  #sent = 0;
  #reason: SpliceEndReason = 'closed';
  #open = 2;

  /**
   * Starts piping at once. `downstream` and `upstream` must be connected (upstream data already
   * read, e.g. a 101 response head, must have been handled by the caller).
   */
  constructor(downstream: Socket, upstream: Socket, idleTimeoutMs: number, onEnd: (r: SpliceResult) => void) {
    this.#down = downstream;
    this.#up = upstream;
    this.#onEnd = onEnd;
    this.#pipe(downstream, upstream, true);
    this.#pipe(upstream, downstream, false);
    if (idleTimeoutMs > 0) {
      downstream.setTimeout(idleTimeoutMs);
      upstream.setTimeout(idleTimeoutMs);
    }
  }

  get receivedBytes(): number {
    return this.#received;
  }

  get sentBytes(): number {
    return this.#sent;
  }

  /** Destroys both sides now (e.g. the proxy shuts down). */
  destroy(): void {
    this.#down.destroy();
    this.#up.destroy();
  }

  #pipe(from: Socket, to: Socket, downstream: boolean): void {
    from.on('data', (chunk: Buffer) => {
      if (downstream) this.#received += chunk.length;
      else this.#sent += chunk.length;
      if (!to.write(chunk)) from.pause();
    });
    to.on('drain', () => from.resume());
    from.on('end', () => {
      if (!to.destroyed) to.end();
    });
    from.on('timeout', () => {
      if (this.#reason === 'closed') this.#reason = 'idle_timeout';
      this.destroy();
    });
    from.on('error', () => {
      if (this.#reason === 'closed') this.#reason = 'error';
      this.destroy();
    });
    from.on('close', () => {
      // Closed before both directions finished (a reset, a destroy): the other side goes too.
      if (!(from.readableEnded && from.writableFinished)) {
        if (this.#reason === 'closed') this.#reason = 'error';
        to.destroy();
      }
      if (--this.#open === 0) {
        this.#onEnd({ reason: this.#reason, receivedBytes: this.#received, sentBytes: this.#sent });
      }
    });
  }
}
