/**
 * `weft graph`: the live service graph in the terminal, for users without Grafana. One line per
 * edge `SOURCE → DESTINATION` (workloads, `name.namespace`) with RPS (requests per second),
 * SUCCESS (non-5xx share, %) and P99 (latency, ms), from the callers' series (docs/metrics.md):
 *
 *   weft graph --prometheus http://127.0.0.1:9090 [--window 1m] [--namespace default]
 *   weft graph --proxies 127.0.0.1:15100,127.0.0.1:15200 [--sample 2s]
 *
 * With `--prometheus` it runs the service-graph queries over `--window`; with `--proxies` it
 * scrapes each admin port's `/metrics` twice, `--sample` apart. `-o json` prints the edges
 * (`rate` req/s, `success` 0..1, `p99Seconds`). Exit 1 when a source cannot be read, 2 on bad usage
 * (neither or both sources).
 */
import { type Command, Option } from 'commander';
import {
  type GraphEdge,
  GraphSourceError,
  graphFromPrometheus,
  graphFromProxies,
} from '../../observe/graph.ts';
import { CliError } from '../errors.ts';
import { type Format, out, printData, table } from '../output.ts';
import { durationMs, outputOption, run, usage } from './common.ts';

interface GraphOptions {
  readonly prometheus?: string;
  readonly proxies?: string;
  readonly window: string;
  readonly namespace?: string;
  readonly sample: number;
  readonly output: Format;
}

const fixed = (value: number, digits: number, suffix = ''): string =>
  Number.isFinite(value) ? `${value.toFixed(digits)}${suffix}` : '-';

/** The table rows of `edges`. */
export function graphRows(edges: readonly GraphEdge[]): string[][] {
  return edges.map((e) => [
    `${e.source}.${e.sourceNamespace}`,
    '→',
    `${e.target}.${e.targetNamespace}`,
    fixed(e.rate, 2),
    fixed(e.success * 100, 1, '%'),
    fixed(e.p99Seconds * 1000, 1, 'ms'),
  ]);
}

export function registerGraph(program: Command): void {
  const cmd = program
    .command('graph')
    .description('print the live service graph: edges with request rate, success % and p99 latency')
    .addOption(new Option('--prometheus <url>', 'a Prometheus that scrapes the mesh').env('WEFT_PROMETHEUS'))
    .option('--proxies <host:port,...>', "proxies' admin addresses, scraped directly")
    .option('--window <duration>', 'rate window for --prometheus (a PromQL duration)', '1m')
    .option('--namespace <ns>', 'only edges from workloads in this namespace')
    .option('--sample <duration>', 'time between the two scrapes for --proxies', durationMs, 2000);
  outputOption(cmd, ['table', 'json']).action(
    run(async (opts: GraphOptions) => {
      if ((opts.prometheus === undefined) === (opts.proxies === undefined)) {
        throw usage('give exactly one of --prometheus <url> or --proxies <host:port,...>');
      }
      if (!/^\d+(ms|s|m|h)$/.test(opts.window))
        throw usage(`--window: "${opts.window}" is not a duration like 30s or 1m`);
      let edges: GraphEdge[];
      try {
        edges =
          opts.prometheus !== undefined
            ? await graphFromPrometheus(opts.prometheus, opts.window, opts.namespace)
            : (
                await graphFromProxies(
                  opts
                    .proxies!.split(',')
                    .map((s) => s.trim())
                    .filter(Boolean),
                  opts.sample,
                )
              ).filter((e) => opts.namespace === undefined || e.sourceNamespace === opts.namespace);
      } catch (err) {
        if (err instanceof GraphSourceError) throw new CliError(err.message);
        throw err;
      }
      if (opts.output === 'json') {
        printData(edges, 'json');
        return;
      }
      if (edges.length === 0) {
        out('No traffic between workloads seen.');
        return;
      }
      out(table(['SOURCE', '', 'DESTINATION', 'RPS', 'SUCCESS', 'P99'], graphRows(edges)));
    }),
  );
}
