/**
 * The GOAWAY error code (RFC 9113 §7) for a downstream HTTP/2 session that node:http2 ends on an
 * error of nghttp2 or of its own frame accounting. Node closes every such session with
 * INTERNAL_ERROR, which tells a peer "the server failed" where the peer broke the protocol or
 * flooded it; the codes below say what happened instead:
 *
 * - ENHANCE_YOUR_CALM (RFC 9113 §10.5, "excessive load"): nghttp2's flood detection (too many
 *   queued PING/SETTINGS ACKs, CVE-2019-9512/9515: NGHTTP2_ERR_FLOODED), CONTINUATION frames
 *   beyond its cap per header block (CVE-2024-27316: NGHTTP2_ERR_TOO_MANY_CONTINUATIONS), too many
 *   SETTINGS entries, and node's `maxSessionInvalidFrames` / `maxSessionRejectedStreams`
 *   (empty DATA frames, malformed or refused streams: `ERR_HTTP2_TOO_MANY_INVALID_FRAMES`);
 * - PROTOCOL_ERROR, FRAME_SIZE_ERROR, COMPRESSION_ERROR, FLOW_CONTROL_ERROR: nghttp2's own
 *   connection errors of those kinds (e.g. DATA beyond a stream's `content-length`, §8.1.1).
 *
 * Anything else keeps node's default (undefined here).
 */
import { constants } from 'node:http2';

const {
  NGHTTP2_ENHANCE_YOUR_CALM,
  NGHTTP2_PROTOCOL_ERROR,
  NGHTTP2_FRAME_SIZE_ERROR,
  NGHTTP2_COMPRESSION_ERROR,
  NGHTTP2_FLOW_CONTROL_ERROR,
} = constants;

/** nghttp2 library error numbers (nghttp2.h `nghttp2_error`) → GOAWAY error code. */
const BY_LIBRARY_ERROR: ReadonlyMap<number, number> = new Map([
  [-904, NGHTTP2_ENHANCE_YOUR_CALM], // NGHTTP2_ERR_FLOODED
  [-905, NGHTTP2_ENHANCE_YOUR_CALM], // NGHTTP2_ERR_TOO_MANY_CONTINUATIONS
  [-537, NGHTTP2_ENHANCE_YOUR_CALM], // NGHTTP2_ERR_TOO_MANY_SETTINGS
  [-505, NGHTTP2_PROTOCOL_ERROR], // NGHTTP2_ERR_PROTO
  [-903, NGHTTP2_PROTOCOL_ERROR], // NGHTTP2_ERR_BAD_CLIENT_MAGIC
  [-522, NGHTTP2_FRAME_SIZE_ERROR], // NGHTTP2_ERR_FRAME_SIZE_ERROR
  [-523, NGHTTP2_COMPRESSION_ERROR], // NGHTTP2_ERR_HEADER_COMP
  [-524, NGHTTP2_FLOW_CONTROL_ERROR], // NGHTTP2_ERR_FLOW_CONTROL
]);

/** node:http2's own flood limits, by error code. */
const BY_NODE_CODE: ReadonlyMap<string, number> = new Map([
  ['ERR_HTTP2_TOO_MANY_INVALID_FRAMES', NGHTTP2_ENHANCE_YOUR_CALM],
]);

/** The GOAWAY code for a session ended by `error` (undefined: node's default). */
export function goawayCodeOf(error: Error | null | undefined): number | undefined {
  if (error === undefined || error === null) return undefined;
  const { code, errno } = error as NodeJS.ErrnoException;
  return (
    (code === undefined ? undefined : BY_NODE_CODE.get(code)) ??
    (errno === undefined ? undefined : BY_LIBRARY_ERROR.get(errno))
  );
}
