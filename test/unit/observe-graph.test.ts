/**
 * `weft graph`'s arithmetic (control-plane/observe/graph.ts): the Prometheus text parser and the
 * histogram quantile, which must agree with PromQL's `histogram_quantile` (linear interpolation in
 * the bucket holding rank q·total; the highest finite bound when the rank is in +Inf).
 */
import { describe, expect, it } from 'vitest';
import { edgeQueries, histogramQuantile, parseExposition } from '../../control-plane/observe/graph.ts';

describe('parseExposition', () => {
  it('reads names, labels (with escapes) and values, skipping comments', () => {
    const samples = parseExposition(
      [
        '# HELP weft_requests_total Requests.',
        '# TYPE weft_requests_total counter',
        'weft_requests_total{reporter="source",source_workload="web-v1",response_flags="a\\"b\\\\c"} 42',
        'process_cpu_seconds_total 1.5',
        'weft_request_duration_seconds_bucket{le="+Inf",reporter="source"} 7',
      ].join('\n'),
    );
    expect(samples).toEqual([
      {
        name: 'weft_requests_total',
        labels: { reporter: 'source', source_workload: 'web-v1', response_flags: 'a"b\\c' },
        value: 42,
      },
      { name: 'process_cpu_seconds_total', labels: {}, value: 1.5 },
      { name: 'weft_request_duration_seconds_bucket', labels: { le: '+Inf', reporter: 'source' }, value: 7 },
    ]);
  });
});

describe('histogramQuantile', () => {
  const buckets = new Map([
    [0.1, 50],
    [0.5, 90],
    [1, 100],
    [Number.POSITIVE_INFINITY, 100],
  ]);

  it('interpolates linearly inside the bucket holding the rank', () => {
    expect(histogramQuantile(0.5, buckets)).toBeCloseTo(0.1, 9); // rank 50 = top of the first bucket
    expect(histogramQuantile(0.7, buckets)).toBeCloseTo(0.1 + 0.4 * (20 / 40), 9);
    expect(histogramQuantile(0.99, buckets)).toBeCloseTo(0.5 + 0.5 * (9 / 10), 9);
  });

  it('returns the highest finite bound when the rank falls in +Inf, and NaN when empty', () => {
    const tail = new Map([
      [0.1, 1],
      [Number.POSITIVE_INFINITY, 10],
    ]);
    expect(histogramQuantile(0.99, tail)).toBe(0.1);
    expect(histogramQuantile(0.99, new Map([[Number.POSITIVE_INFINITY, 0]]))).toBeNaN();
  });
});

describe('edgeQueries', () => {
  it("uses the callers' series, the window given and the namespace filter", () => {
    const q = edgeQueries('30s', 'shop');
    for (const expr of Object.values(q)) {
      expect(expr).toContain('reporter="source", source_namespace="shop"');
      expect(expr).toContain('[30s]');
    }
    expect(q.p99).toMatch(/^histogram_quantile\(0\.99, sum by \(le, /);
  });
});
