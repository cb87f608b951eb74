/**
 * One attempt of an upstream exchange (forward.ts): one dispatch of the request to one endpoint, and
 * undici's handler for it. The exchange (`AttemptOwner`) gets the callbacks of its current attempt
 * only; once it lets go of one (`released`: timed out, retried, abandoned), that attempt's later
 * callbacks are ignored and its request is aborted, or, when `draining` (a response retried on its
 * status), its body is read to the end and dropped so the connection can be reused, up to
 * `DRAIN_LIMIT_BYTES`, past which it is aborted too.
 *
 * Invariants: an attempt counts in `endpoint.activeRequests` from construction until the owner
 * releases it (exactly once); an attempt released before undici started it is aborted as soon as it
 * starts; an attempt is never aborted after its response ended (undici's controller ignores a repeat).
 */
import type { Dispatcher } from 'undici';
import type { ErrorKind } from '../errors.ts';
import type { HeaderMap } from '../router/types.ts';
import type { UpstreamEndpoint } from '../upstream/types.ts';

/**
 * A response retried on its status is read to its end and dropped (keeping its connection) when its
 * body is at most this many bytes; one that declares more, or turns out longer, is aborted (its
 * connection closed). Draining never delays the retry: an unfinished drain is aborted when it starts.
 */
export const DRAIN_LIMIT_BYTES = 16_384;

/** What an attempt reports to, while it is current. */
export interface AttemptOwner {
  /** `endStream`: the head ended the response (HTTP/2 HEADERS with END_STREAM, e.g. gRPC Trailers-Only). */
  attemptHead(attempt: Attempt, statusCode: number, headers: HeaderMap, endStream: boolean): void;
  attemptData(controller: Dispatcher.DispatchController, chunk: Buffer): void;
  /** `trailers`: the response's trailer fields (HTTP/2 upstreams; empty when none). */
  attemptEnd(trailers: HeaderMap): void;
  attemptError(attempt: Attempt, err: Error & { code?: string }): void;
}

/**
 * One dispatch of the request to one endpoint, and undici's handler for it. Once the exchange lets
 * go of an attempt (`released`), its callbacks are ignored: a released attempt is aborted, or, when
 * `draining`, its response is read to the end and dropped.
 */
export class Attempt implements Dispatcher.DispatchHandler {
  readonly endpoint: UpstreamEndpoint;
  readonly #owner: AttemptOwner;
  controller: Dispatcher.DispatchController | undefined = undefined;
  released = false;
  draining = false;
  /** The response ended or failed: nothing left to abort. */
  ended = false;
  /** Body bytes dropped while draining. */
  drainedBytes = 0;
  /** Holds a slot of the cluster's `admitRetry` (a retry attempt, until its head or failure). */
  holdsRetrySlot = false;

  /** Counts itself in `endpoint.activeRequests` until released. */
  constructor(owner: AttemptOwner, endpoint: UpstreamEndpoint) {
    this.#owner = owner;
    this.endpoint = endpoint;
    endpoint.activeRequests++;
  }

  /** Aborts the request unless it ended; before it started, `onRequestStart` does it. */
  abort(kind: ErrorKind): void {
    this.draining = false;
    if (!this.ended) this.controller?.abort(new Error(kind));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.released && !this.draining) controller.abort(new Error('attempt abandoned'));
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    this.controller = controller;
    if (!this.released) {
      const endStream = (controller as { headersEndStream?: boolean }).headersEndStream === true;
      this.#owner.attemptHead(this, statusCode, headers as HeaderMap, endStream);
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.released) {
      this.#owner.attemptData(controller, chunk);
    } else if (this.draining) {
      this.drainedBytes += chunk.length;
      if (this.drainedBytes > DRAIN_LIMIT_BYTES) this.abort('UPSTREAM_RESET');
    }
  }

  onResponseEnd(
    _controller: Dispatcher.DispatchController,
    trailers: Record<string, string | string[] | undefined>,
  ): void {
    this.ended = true;
    if (!this.released) this.#owner.attemptEnd(trailers as HeaderMap);
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    this.ended = true;
    if (!this.released) this.#owner.attemptError(this, err as Error & { code?: string });
  }
}
