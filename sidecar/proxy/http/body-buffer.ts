/**
 * Request body buffering for replay: a retried request must send the very bytes the first attempt
 * sent, so a request whose route may retry it reads its body into memory before the first attempt,
 * up to the route's `maxBufferedBodyBytes` (Envoy's per-request buffer limit, issue 5).
 *
 * Outcomes, reported once to the `BodySink`:
 * - the body ended within the limit → `onBodyBuffered(buffer)`: sent as that one Buffer on every
 *   attempt (replayable);
 * - it outgrew the limit (only possible for a body without Content-Length; a declared length over
 *   the limit is never buffered) → `onBodyOverflow(stream)`: a stream of the bytes read so far
 *   followed by the rest of the request, sent once and never retried. Backpressure holds from then
 *   on (the rest is pulled as the upstream takes it).
 *
 * Invariants: at most `limitBytes` plus one chunk is held; nothing is reported after `cancel()`
 * (the exchange ended: timeout or client gone), and every listener is removed by then.
 */
import { Readable } from 'node:stream';
import type { DownstreamRequest } from './context.ts';

/** Where a `BodyBuffer` reports. */
export interface BodySink {
  onBodyBuffered(body: Buffer): void;
  onBodyOverflow(body: Readable): void;
}

/** The buffered prefix, then whatever the request still has. */
async function* prefixThenRest(prefix: readonly Buffer[], rest: DownstreamRequest): AsyncGenerator<Buffer> {
  yield* prefix;
  for await (const chunk of rest) yield chunk as Buffer;
}

/** Reads one request body into memory, within a limit. Create, then `start()`. */
export class BodyBuffer {
  readonly #req: DownstreamRequest;
  readonly #limitBytes: number;
  readonly #sink: BodySink;
  readonly #chunks: Buffer[] = [];
  #sizeBytes = 0;
  #settled = false;
  readonly #onData = (chunk: Buffer): void => {
    this.#chunks.push(chunk);
    this.#sizeBytes += chunk.length;
    if (this.#sizeBytes > this.#limitBytes) this.#overflow();
  };
  readonly #onEnd = (): void => {
    if (this.#settle()) this.#sink.onBodyBuffered(Buffer.concat(this.#chunks, this.#sizeBytes));
  };
  /** A client abort: the exchange learns of it from the response's 'close'; only stop reading here. */
  readonly #onError = (): void => {
    this.#settle();
  };

  constructor(req: DownstreamRequest, limitBytes: number, sink: BodySink) {
    this.#req = req;
    this.#limitBytes = limitBytes;
    this.#sink = sink;
  }

  /** Starts reading (the request flows until it ends or outgrows the limit). */
  start(): void {
    const req = this.#req;
    req.on('data', this.#onData);
    req.once('end', this.#onEnd);
    req.once('error', this.#onError);
  }

  /** Stops reading and reports nothing more. Idempotent. */
  cancel(): void {
    this.#settle();
  }

  #overflow(): void {
    if (!this.#settle()) return;
    this.#req.pause();
    this.#sink.onBodyOverflow(Readable.from(prefixThenRest(this.#chunks, this.#req), { objectMode: false }));
  }

  /** Detaches from the request; false when already settled. */
  #settle(): boolean {
    if (this.#settled) return false;
    this.#settled = true;
    const req = this.#req;
    req.off('data', this.#onData);
    req.off('end', this.#onEnd);
    req.off('error', this.#onError);
    return true;
  }
}
