/**
 * The live service graph for `weft graph`: edges `source_workload → destination_workload` with
 * request rate (req/s), success ratio (non-5xx / all, 0..1) and p99 latency (seconds), from the
 * callers' series (`reporter="source"`, see docs/metrics.md). Two sources:
 *
 * - `graphFromPrometheus(url, window)`: three instant queries against Prometheus's HTTP API
 *   (`/api/v1/query`), the same expressions as the service-graph recording rules;
 * - `graphFromProxies(targets, sampleMs)`: scrapes each proxy's `/metrics` twice, `sampleMs` apart,
 *   and computes the rates from the counter deltas and p99 from the histogram bucket deltas the way
 *   PromQL's `histogram_quantile` does (linear interpolation inside the bucket).
 *
 * Errors: an unreachable source, a non-200 answer or a Prometheus error throws `GraphSourceError`
 * naming the source and the reason.
 */
import { request } from 'undici';

export interface GraphEdge {
  readonly source: string;
  readonly sourceNamespace: string;
  readonly target: string;
  readonly targetNamespace: string;
  /** Requests per second. */
  readonly rate: number;
  /** Non-5xx share, 0..1; NaN without requests. */
  readonly success: number;
  /** 99th percentile latency, seconds; NaN without requests. */
  readonly p99Seconds: number;
}

export class GraphSourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GraphSourceError';
  }
}

const EDGE_BY = 'source_workload, source_namespace, destination_workload, destination_namespace';

/** The PromQL of the three edge measures over `window` (a Prometheus duration, e.g. `1m`). */
export function edgeQueries(
  window: string,
  namespace?: string,
): { rate: string; errors: string; p99: string } {
  const ns = namespace === undefined ? '' : `, source_namespace="${namespace}"`;
  const sel = `reporter="source"${ns}`;
  const all = `sum by (${EDGE_BY}) (rate(weft_requests_total{${sel}}[${window}]))`;
  return {
    rate: all,
    errors: `sum by (${EDGE_BY}) (rate(weft_requests_total{${sel}, response_code=~"5.."}[${window}])) or 0 * ${all}`,
    p99: `histogram_quantile(0.99, sum by (le, ${EDGE_BY}) (rate(weft_request_duration_seconds_bucket{${sel}}[${window}])))`,
  };
}

interface PromVector {
  readonly status: string;
  readonly error?: string;
  readonly data?: { readonly result: readonly { metric: Record<string, string>; value: [number, string] }[] };
}

async function getText(url: string, what: string): Promise<string> {
  let res: Awaited<ReturnType<typeof request>>;
  try {
    res = await request(url, { headersTimeout: 5000, bodyTimeout: 5000 });
  } catch (err) {
    throw new GraphSourceError(`${what}: ${(err as Error).message}`);
  }
  const text = await res.body.text();
  if (res.statusCode !== 200)
    throw new GraphSourceError(`${what}: HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
  return text;
}

/** Runs an instant query; resolves with the result vector. */
export async function promQuery(
  base: string,
  query: string,
): Promise<readonly { metric: Record<string, string>; value: number }[]> {
  const url = `${base.replace(/\/$/, '')}/api/v1/query?query=${encodeURIComponent(query)}`;
  const body = JSON.parse(await getText(url, `Prometheus ${base}`)) as PromVector;
  if (body.status !== 'success' || body.data === undefined) {
    throw new GraphSourceError(`Prometheus ${base}: ${body.error ?? 'query failed'}`);
  }
  return body.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
}

const edgeKey = (m: Record<string, string | undefined>): string =>
  `${m.source_workload ?? ''}\0${m.source_namespace ?? ''}\0${m.destination_workload ?? ''}\0${m.destination_namespace ?? ''}`;

/** The graph from a Prometheus that scrapes the mesh (`base` e.g. `http://127.0.0.1:9090`). */
export async function graphFromPrometheus(
  base: string,
  window = '1m',
  namespace?: string,
): Promise<GraphEdge[]> {
  const q = edgeQueries(window, namespace);
  const [rates, errors, p99s] = await Promise.all([
    promQuery(base, q.rate),
    promQuery(base, q.errors),
    promQuery(base, q.p99),
  ]);
  const errorsBy = new Map(errors.map((r) => [edgeKey(r.metric), r.value]));
  const p99By = new Map(p99s.map((r) => [edgeKey(r.metric), r.value]));
  return sortEdges(
    rates.map((r) => {
      const key = edgeKey(r.metric);
      const err = errorsBy.get(key) ?? 0;
      return {
        source: r.metric.source_workload ?? 'unknown',
        sourceNamespace: r.metric.source_namespace ?? 'unknown',
        target: r.metric.destination_workload ?? 'unknown',
        targetNamespace: r.metric.destination_namespace ?? 'unknown',
        rate: r.value,
        success: r.value > 0 ? 1 - err / r.value : Number.NaN,
        p99Seconds: p99By.get(key) ?? Number.NaN,
      };
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Straight from the proxies

/** One sample of the Prometheus text format. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Parses the Prometheus text exposition format (0.0.4): comments skipped, label values unescaped. */
export function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) {
      labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
    }
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** Per-edge accumulated counters of one scrape round. */
interface EdgeCounts {
  edge: Record<string, string>;
  total: number;
  errors: number;
  /** le → cumulative count. */
  buckets: Map<number, number>;
}

function accumulate(samples: readonly Sample[]): Map<string, EdgeCounts> {
  const out = new Map<string, EdgeCounts>();
  const entry = (labels: Readonly<Record<string, string>>): EdgeCounts => {
    const key = edgeKey(labels);
    let e = out.get(key);
    if (e === undefined) {
      e = {
        edge: {
          source_workload: labels.source_workload ?? 'unknown',
          source_namespace: labels.source_namespace ?? 'unknown',
          destination_workload: labels.destination_workload ?? 'unknown',
          destination_namespace: labels.destination_namespace ?? 'unknown',
        },
        total: 0,
        errors: 0,
        buckets: new Map(),
      };
      out.set(key, e);
    }
    return e;
  };
  for (const s of samples) {
    if (s.labels.reporter !== 'source') continue;
    if (s.name === 'weft_requests_total') {
      const e = entry(s.labels);
      e.total += s.value;
      if (/^5\d\d$/.test(s.labels.response_code ?? '')) e.errors += s.value;
    } else if (s.name === 'weft_request_duration_seconds_bucket') {
      const e = entry(s.labels);
      const le = s.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(s.labels.le);
      e.buckets.set(le, (e.buckets.get(le) ?? 0) + s.value);
    }
  }
  return out;
}

/**
 * The q-quantile of a cumulative histogram `le → count`, as PromQL's `histogram_quantile`:
 * linear interpolation within the bucket holding rank q·total (lower bound 0 for the first);
 * the highest finite bound when the rank falls in +Inf; NaN when empty.
 */
export function histogramQuantile(q: number, buckets: ReadonlyMap<number, number>): number {
  const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total <= 0) return Number.NaN;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const [le, count] of sorted) {
    if (count >= rank) {
      if (le === Number.POSITIVE_INFINITY) return lowerBound;
      if (count === lowerCount) return le;
      return lowerBound + ((le - lowerBound) * (rank - lowerCount)) / (count - lowerCount);
    }
    lowerBound = le;
    lowerCount = count;
  }
  return lowerBound;
}

async function scrapeAll(targets: readonly string[]): Promise<Sample[]> {
  const texts = await Promise.all(
    targets.map((t) => {
      const url = /^https?:\/\//.test(t) ? t : `http://${t}/metrics`;
      return getText(url, `proxy ${t}`);
    }),
  );
  return texts.flatMap(parseExposition);
}

/**
 * The graph from the proxies' admin ports (`host:port`, or full metrics URLs): two scrapes
 * `sampleMs` apart; rates and p99 over that interval.
 */
export async function graphFromProxies(targets: readonly string[], sampleMs = 2000): Promise<GraphEdge[]> {
  const before = accumulate(await scrapeAll(targets));
  const t0 = performance.now();
  await new Promise((resolve) => setTimeout(resolve, sampleMs));
  const after = accumulate(await scrapeAll(targets));
  const seconds = (performance.now() - t0) / 1000;
  const edges: GraphEdge[] = [];
  for (const [key, now] of after) {
    const was = before.get(key);
    const total = now.total - (was?.total ?? 0);
    const errors = now.errors - (was?.errors ?? 0);
    const buckets = new Map<number, number>();
    for (const [le, count] of now.buckets) buckets.set(le, count - (was?.buckets.get(le) ?? 0));
    edges.push({
      source: now.edge.source_workload!,
      sourceNamespace: now.edge.source_namespace!,
      target: now.edge.destination_workload!,
      targetNamespace: now.edge.destination_namespace!,
      rate: total / seconds,
      success: total > 0 ? 1 - errors / total : Number.NaN,
      p99Seconds: histogramQuantile(0.99, buckets),
    });
  }
  return sortEdges(edges);
}

function sortEdges(edges: GraphEdge[]): GraphEdge[] {
  return edges.sort((a, b) => `${a.source}\0${a.target}`.localeCompare(`${b.source}\0${b.target}`));
}
