/**
 * `X-Forwarded-Proto` at the edge: the gateway sets it to the scheme the client used (`https` on
 * a TLS listener, else `http`), replacing whatever the client sent, so services behind the
 * gateway can build absolute URLs and tell secure requests apart. (De-facto standard header;
 * RFC 7239 `Forwarded` carries the same as `proto=`.)
 */
import type { TLSSocket } from 'node:tls';
import { CONTINUE, type FilterResult, type HttpFilter } from '../../sidecar/proxy/filters/filter.ts';
import type { RequestContext } from '../../sidecar/proxy/http/context.ts';

export const forwardedProtoFilter: HttpFilter = {
  name: 'weft.filters.http.forwarded_proto',
  onRequest(ctx: RequestContext): FilterResult {
    ctx.upstreamHeaders['x-forwarded-proto'] =
      (ctx.req.socket as TLSSocket).encrypted === true ? 'https' : 'http';
    return CONTINUE;
  },
};
