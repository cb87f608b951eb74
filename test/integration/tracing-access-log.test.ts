/**
 * Trace propagation and access logs through a real sidecar (static config, access log on): curl
 * sends requests with W3C, single-header B3, multi-header B3 or no trace context to the outbound
 * listener; the upstream echo shows what the sidecar forwarded; the sidecar's stdout has one JSON
 * access-log line per request with the trace id, request id, source/destination, route, status,
 * flags, duration and byte counts, and credentials in the query string redacted.
 *
 * Span export: a second sidecar runs with `--otlp-endpoint` (an OTLP/HTTP receiver in this process:
 * a real HTTP server decoding `ExportTraceServiceRequest` JSON) and `--trace-sample-rate 1`: a
 * request without trace context starts a sampled trace and is exported; an explicit unsampled
 * `traceparent` (flags 00) is respected and not exported; a sampled one is exported as this hop's
 * span (the span id the upstream saw as parent-id, the caller's span as parent).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curl } from '../support/curl.ts';
import { pollUntil } from '../support/mesh.ts';
import { outboundBootstrap, type RunningSidecar, startSidecar } from '../support/sidecar.ts';
import { startUpstream, type Upstream } from '../support/upstream.ts';

let upstream: Upstream;
let sidecar: RunningSidecar;
let traced: RunningSidecar;
let receiver: Server;
let base = '';

interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: { key: string; value: { stringValue?: string; intValue?: string } }[];
  status: { code: number };
}
/** Every span the OTLP receiver got, with its resource's service.name. */
const received: { service: string | undefined; span: ReceivedSpan }[] = [];

interface Echo {
  headers: Record<string, string>;
}

interface AccessLine {
  component?: string;
  request_id?: string;
  trace_id?: string;
  path?: string;
  status?: number;
  flags?: string;
  route?: string;
  cluster?: string;
  upstream_host?: string;
  duration_ms?: number;
  bytes_received?: number;
  bytes_sent?: number;
  client?: string;
}

beforeAll(async () => {
  upstream = await startUpstream();
  sidecar = await startSidecar(
    outboundBootstrap({
      virtualHosts: [
        {
          name: 'vh',
          domains: ['echo'],
          routes: [{ name: 'echo-route', route: { clusters: [{ name: 'echo' }] } }],
        },
      ],
      clusters: [{ name: 'echo' }],
      endpoints: [{ clusterName: 'echo', endpoints: [{ address: '127.0.0.1', port: upstream.port }] }],
    }),
    { extraArgs: ['--access-log'] },
  );
  base = sidecar.url('outbound');

  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (
        req.method !== 'POST' ||
        req.url !== '/v1/traces' ||
        req.headers['content-type'] !== 'application/json'
      ) {
        res.writeHead(400).end();
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString()) as {
        resourceSpans: {
          resource: { attributes: { key: string; value: { stringValue?: string } }[] };
          scopeSpans: { spans: ReceivedSpan[] }[];
        }[];
      };
      for (const rs of body.resourceSpans) {
        const service = rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue;
        for (const ss of rs.scopeSpans) for (const span of ss.spans) received.push({ service, span });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const rxPort = (receiver.address() as AddressInfo).port;
  traced = await startSidecar(
    outboundBootstrap({
      virtualHosts: [
        {
          name: 'vh',
          domains: ['echo'],
          routes: [{ name: 'echo-route', route: { clusters: [{ name: 'echo' }] } }],
        },
      ],
      clusters: [{ name: 'echo' }],
      endpoints: [{ clusterName: 'echo', endpoints: [{ address: '127.0.0.1', port: upstream.port }] }],
    }),
    { extraArgs: ['--otlp-endpoint', `http://127.0.0.1:${rxPort}/v1/traces`, '--trace-sample-rate', '1'] },
  );
});

afterAll(async () => {
  await sidecar?.stop();
  await traced?.stop();
  receiver?.closeAllConnections();
  await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()));
  await upstream?.close();
});

async function send(
  headers: string[],
  path = '/trace',
  via = base,
): Promise<{ echo: Echo; requestId: string }> {
  const res = await curl([...headers.flatMap((h) => ['-H', h]), '-H', 'Host: echo', `${via}${path}`]);
  expect(res.status).toBe(200);
  const echo = JSON.parse(res.body) as Echo;
  return { echo, requestId: echo.headers['x-request-id']! };
}

async function accessLine(requestId: string): Promise<AccessLine> {
  return pollUntil(`the access log line of ${requestId}`, () =>
    sidecar.output
      .map((l) => {
        try {
          return JSON.parse(l) as AccessLine;
        } catch {
          return {};
        }
      })
      .find((e) => e.component === 'access' && e.request_id === requestId),
  );
}

const TRACE128 = '80f198ee56343ba864fe8b2a57d3eff7';
const SPAN = 'e457b5a2e4d86bd1';

describe('trace propagation', () => {
  it('W3C: keeps the trace id and flags, sets a new parent id, forwards tracestate', async () => {
    const { echo, requestId } = await send([
      'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      'tracestate: congo=t61rcWkgMzE',
    ]);
    expect(echo.headers.traceparent).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
    expect(echo.headers.traceparent).not.toContain('00f067aa0ba902b7');
    expect(echo.headers.tracestate).toBe('congo=t61rcWkgMzE');
    expect((await accessLine(requestId)).trace_id).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
  });

  it('single b3: continues the trace in b3 and traceparent with this hop as the span', async () => {
    const { echo, requestId } = await send([`b3: ${TRACE128}-${SPAN}-1`]);
    const m = new RegExp(`^${TRACE128}-([0-9a-f]{16})-1-${SPAN}$`).exec(echo.headers.b3 ?? '');
    expect(m, echo.headers.b3).not.toBeNull();
    expect(echo.headers.traceparent).toBe(`00-${TRACE128}-${m![1]}-01`);
    expect((await accessLine(requestId)).trace_id).toBe(TRACE128);
  });

  it('multi X-B3-*: rewritten with this hop as the span, the incoming span as parent', async () => {
    const { echo } = await send([`X-B3-TraceId: ${TRACE128}`, `X-B3-SpanId: ${SPAN}`, 'X-B3-Sampled: 1']);
    expect(echo.headers['x-b3-traceid']).toBe(TRACE128);
    expect(echo.headers['x-b3-parentspanid']).toBe(SPAN);
    expect(echo.headers['x-b3-spanid']).toMatch(/^[0-9a-f]{16}$/);
    expect(echo.headers['x-b3-spanid']).not.toBe(SPAN);
    expect(echo.headers['x-b3-sampled']).toBe('1');
    expect(echo.headers.traceparent).toBe(`00-${TRACE128}-${echo.headers['x-b3-spanid']}-01`);
  });

  it('no trace context: a new trace starts (traceparent), its id in the access log', async () => {
    const { echo, requestId } = await send([]);
    const m = /^00-([0-9a-f]{32})-[0-9a-f]{16}-00$/.exec(echo.headers.traceparent ?? '');
    expect(m).not.toBeNull();
    expect((await accessLine(requestId)).trace_id).toBe(m![1]);
  });
});

describe('access log', () => {
  it('one JSON line per request: ids, route, cluster, status, flags, duration and bytes; query credentials redacted', async () => {
    const body = 'x'.repeat(1234);
    const res = await curl([
      '-H',
      'Host: echo',
      '-H',
      'Authorization: Bearer secret-token-123',
      '--data-binary',
      body,
      `${base}/items?api_key=abc123&page=2&access_token=tok456`,
    ]);
    expect(res.status).toBe(200);
    const requestId = (JSON.parse(res.body) as Echo).headers['x-request-id']!;
    const line = await accessLine(requestId);
    expect(line).toMatchObject({
      path: '/items?api_key=[REDACTED]&page=2&access_token=[REDACTED]',
      status: 200,
      flags: '-',
      route: 'echo-route',
      cluster: 'echo',
      upstream_host: `127.0.0.1:${upstream.port}`,
      bytes_received: 1234,
      bytes_sent: Buffer.byteLength(res.body),
      client: '127.0.0.1',
    });
    expect(line.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(line.duration_ms).toBeGreaterThan(0);
    const all = sidecar.output.join('\n');
    expect(all).not.toContain('abc123');
    expect(all).not.toContain('tok456');
    expect(all).not.toContain('secret-token-123');
  });

  it('a local reply is logged with its flag and the size of its body', async () => {
    const res = await curl(['-H', 'Host: nowhere', `${base}/x`]);
    expect(res.status).toBe(404);
    const line = await pollUntil('the NO_ROUTE access line', () =>
      sidecar.output
        .map((l) => {
          try {
            return JSON.parse(l) as AccessLine;
          } catch {
            return {};
          }
        })
        .find((e) => e.component === 'access' && e.flags === 'NO_ROUTE'),
    );
    expect(line.status).toBe(404);
    expect(line.bytes_sent).toBe(Buffer.byteLength(res.body));
  });
});

describe('OTLP span export', () => {
  it('exports sampled hops as CLIENT spans with the forwarded ids; an explicit unsampled trace is not exported', async () => {
    const via = traced.url('outbound');
    const unsampledTrace = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
    await send([`traceparent: 00-${unsampledTrace}-1111111111111111-00`], '/unsampled', via);
    const fresh = await send([], '/fresh', via);
    const freshTrace = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(fresh.echo.headers.traceparent ?? '');
    expect(freshTrace, 'a trace started here is sampled at rate 1').not.toBeNull();
    const sampledTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const caller = '00f067aa0ba902b7';
    const { echo } = await send([`traceparent: 00-${sampledTrace}-${caller}-01`], '/sampled?token=zzz', via);
    const hopSpan = echo.headers.traceparent!.split('-')[2];

    const span = await pollUntil(
      'the sampled span at the OTLP receiver',
      () => received.find((r) => r.span.traceId === sampledTrace),
      { timeoutMs: 5000 },
    );
    expect(span.service).toBe('test');
    expect(span.span).toMatchObject({
      traceId: sampledTrace,
      spanId: hopSpan,
      parentSpanId: caller,
      name: 'GET echo-route',
      kind: 3,
      status: { code: 0 },
    });
    const attrs = Object.fromEntries(
      span.span.attributes.map((a) => [a.key, a.value.stringValue ?? a.value.intValue]),
    );
    expect(attrs).toMatchObject({
      'http.request.method': 'GET',
      'http.response.status_code': '200',
      'url.path': '/sampled',
      'weft.route': 'echo-route',
      'weft.cluster': 'echo',
    });
    const duration = BigInt(span.span.endTimeUnixNano) - BigInt(span.span.startTimeUnixNano);
    expect(duration > 0n).toBe(true);
    const startMs = Number(BigInt(span.span.startTimeUnixNano) / 1_000_000n);
    expect(Math.abs(startMs - Date.now())).toBeLessThan(60_000);

    const fresher = received.find((r) => r.span.traceId === freshTrace![1]);
    expect(fresher?.span.parentSpanId).toBeUndefined();
    expect(fresher?.span.spanId).toBe(freshTrace![2]);
    expect(received.some((r) => r.span.traceId === unsampledTrace)).toBe(false);
  });
});
