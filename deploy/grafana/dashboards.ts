/**
 * Weft's Grafana dashboards, as code: Mesh overview, Service, Workload, Control plane and Service
 * graph (Node Graph panel). `generate.ts` writes them to `dashboards/*.json`; the unit test
 * checks the files match and the schema rules; the integration test runs every PromQL expression
 * here against a real Prometheus scraping a running mesh. Metric names: docs/metrics.md.
 *
 * Conventions: client-side series (`reporter="source"`) for service traffic (the caller sees
 * failures the server never does), server-side (`reporter="destination"`) for a workload's
 * inbound traffic; success = non-5xx over all; an error rate is 0 (not absent) while there are
 * requests but no 5xx, and ratios leave out series without requests in the window (no 0/0 NaN).
 * Dashboard links go by UID (`/d/<uid>`).
 */
import { type Dashboard, dashboard, labelVariable, layout, type Panel, type PanelSpec } from './model.ts';

export const UIDS = {
  mesh: 'weft-mesh',
  service: 'weft-service',
  workload: 'weft-workload',
  controlPlane: 'weft-control-plane',
  serviceGraph: 'weft-service-graph',
} as const;

const RATE = '[$__rate_interval]';

/** `sum by (by) (rate(metric{selector}[$__rate_interval]))` (`by` empty: a plain sum). */
function sumRate(metric: string, selector: string, by = ''): string {
  return `sum${by ? ` by (${by})` : ''} (rate(${metric}{${selector}}${RATE}))`;
}

/** Share of non-5xx responses, 0..1. */
function successRatio(selector: string, by = ''): string {
  return `${sumRate('weft_requests_total', `${selector}, response_code!~"5.."`, by)}\n/\n(${sumRate('weft_requests_total', selector, by)} > 0)`;
}

/** 5xx per second, 0 (not absent) while there is traffic without 5xx. */
function errorRate(selector: string, by = ''): string {
  return `${sumRate('weft_requests_total', `${selector}, response_code=~"5.."`, by)}\nor\n0 * ${sumRate('weft_requests_total', selector, by)}`;
}

/** `histogram_quantile(q, sum by (le, by) (rate(metric_bucket{selector}[...])))`. */
function quantile(q: number, metric: string, selector: string, by = ''): string {
  return `histogram_quantile(${q}, sum by (le${by ? `, ${by}` : ''}) (rate(${metric}_bucket{${selector}}${RATE})))`;
}

function latencyTargets(selector: string, by = '', legendPrefix = ''): PanelSpec['targets'] {
  return [0.5, 0.9, 0.99].map((q) => ({
    expr: quantile(q, 'weft_request_duration_seconds', selector, by),
    legend: `${legendPrefix}p${q * 100}`,
  }));
}

const links = (self: string): Dashboard['links'] =>
  Object.entries(UIDS)
    .filter(([, uid]) => uid !== self)
    .map(([name, uid]) => ({ title: name, type: 'link' as const, url: `/d/${uid}` }));

function withLinks(d: Dashboard): Dashboard {
  return { ...d, links: links(d.uid) };
}

// ---------------------------------------------------------------------------------------------

function meshOverview(): Dashboard {
  const src = 'reporter="source", destination_service_namespace=~"$namespace"';
  const panels = layout([
    {
      type: 'stat',
      title: 'Request rate',
      unit: 'reqps',
      w: 6,
      h: 5,
      targets: [{ expr: sumRate('weft_requests_total', src) }],
    },
    {
      type: 'stat',
      title: 'Success rate (non-5xx)',
      unit: 'percentunit',
      w: 6,
      h: 5,
      targets: [{ expr: successRatio(src) }],
    },
    { type: 'stat', title: '5xx rate', unit: 'reqps', w: 6, h: 5, targets: [{ expr: errorRate(src) }] },
    {
      type: 'stat',
      title: 'P99 latency',
      unit: 's',
      w: 6,
      h: 5,
      targets: [{ expr: quantile(0.99, 'weft_request_duration_seconds', src) }],
    },
    {
      title: 'Requests by service',
      unit: 'reqps',
      targets: [
        {
          expr: sumRate(
            'weft_requests_total',
            src,
            'destination_service_name, destination_service_namespace',
          ),
          legend: '{{destination_service_name}}.{{destination_service_namespace}}',
        },
      ],
    },
    {
      title: 'Success rate by service',
      unit: 'percentunit',
      max: 1,
      targets: [
        {
          expr: successRatio(src, 'destination_service_name, destination_service_namespace'),
          legend: '{{destination_service_name}}.{{destination_service_namespace}}',
        },
      ],
    },
    {
      title: 'P99 latency by service',
      unit: 's',
      targets: [
        {
          expr: quantile(
            0.99,
            'weft_request_duration_seconds',
            src,
            'destination_service_name, destination_service_namespace',
          ),
          legend: '{{destination_service_name}}.{{destination_service_namespace}}',
        },
      ],
    },
    {
      title: 'Responses by code and flag',
      unit: 'reqps',
      targets: [
        {
          expr: sumRate('weft_requests_total', src, 'response_code, response_flags'),
          legend: '{{response_code}} {{response_flags}}',
        },
      ],
    },
    {
      type: 'table',
      title: 'Services',
      unit: 'reqps',
      w: 24,
      targets: [
        {
          expr: sumRate(
            'weft_requests_total',
            src,
            'destination_service_name, destination_service_namespace',
          ),
          refId: 'rate',
        },
      ],
    },
    {
      title: 'Proxy memory (RSS)',
      unit: 'bytes',
      targets: [
        {
          expr: 'sum by (instance) (process_resident_memory_bytes{component="sidecar"})',
          legend: '{{instance}}',
        },
      ],
    },
    {
      title: 'Proxy CPU',
      unit: 'percentunit',
      targets: [
        {
          expr: `sum by (instance) (rate(process_cpu_seconds_total{component="sidecar"}${RATE}))`,
          legend: '{{instance}}',
        },
      ],
    },
  ]);
  return withLinks(
    dashboard(
      UIDS.mesh,
      'Weft / Mesh overview',
      'Golden signals of every service in the mesh, seen by the callers (reporter="source").',
      [labelVariable('namespace', 'Namespace', 'destination_service_namespace')],
      panels,
    ),
  );
}

function service(): Dashboard {
  const src =
    'reporter="source", destination_service_name=~"$service", destination_service_namespace=~"$namespace"';
  const dst = 'reporter="destination", destination_service=~"$service", destination_namespace=~"$namespace"';
  const panels = layout([
    {
      type: 'stat',
      title: 'Client request rate',
      unit: 'reqps',
      w: 8,
      h: 5,
      targets: [{ expr: sumRate('weft_requests_total', src) }],
    },
    {
      type: 'stat',
      title: 'Client success rate',
      unit: 'percentunit',
      w: 8,
      h: 5,
      targets: [{ expr: successRatio(src) }],
    },
    {
      type: 'stat',
      title: 'Client P99 latency',
      unit: 's',
      w: 8,
      h: 5,
      targets: [{ expr: quantile(0.99, 'weft_request_duration_seconds', src) }],
    },
    {
      title: 'Requests by source workload',
      unit: 'reqps',
      targets: [
        {
          expr: sumRate('weft_requests_total', src, 'source_workload, source_namespace'),
          legend: '{{source_workload}}.{{source_namespace}}',
        },
      ],
    },
    {
      title: 'Requests by response code',
      unit: 'reqps',
      targets: [{ expr: sumRate('weft_requests_total', src, 'response_code'), legend: '{{response_code}}' }],
    },
    { title: 'Client latency', unit: 's', targets: latencyTargets(src) },
    { title: '5xx rate', unit: 'reqps', targets: [{ expr: errorRate(src), legend: '5xx' }] },
    {
      title: 'Request size',
      unit: 'bytes',
      targets: [0.5, 0.99].map((q) => ({
        expr: quantile(q, 'weft_request_bytes', src),
        legend: `p${q * 100}`,
      })),
    },
    {
      title: 'Response size',
      unit: 'bytes',
      targets: [0.5, 0.99].map((q) => ({
        expr: quantile(q, 'weft_response_bytes', src),
        legend: `p${q * 100}`,
      })),
    },
    {
      title: 'Server-side requests by workload',
      unit: 'reqps',
      targets: [
        {
          expr: sumRate('weft_requests_total', dst, 'destination_workload'),
          legend: '{{destination_workload}}',
        },
      ],
    },
    {
      title: 'Server-side requests by mTLS',
      unit: 'reqps',
      targets: [
        {
          expr: sumRate('weft_requests_total', dst, 'connection_security_policy'),
          legend: '{{connection_security_policy}}',
        },
      ],
    },
  ]);
  return withLinks(
    dashboard(
      UIDS.service,
      'Weft / Service',
      'One Service: its callers, outcomes, latency and sizes (client side), and its workloads (server side).',
      [
        labelVariable('namespace', 'Namespace', 'destination_service_namespace'),
        labelVariable(
          'service',
          'Service',
          'destination_service_name',
          '{destination_service_namespace=~"$namespace"}',
        ),
      ],
      panels,
    ),
  );
}

function workload(): Dashboard {
  const inbound =
    'reporter="destination", destination_workload=~"$workload", destination_namespace=~"$namespace"';
  const outbound = 'reporter="source", source_workload=~"$workload", source_namespace=~"$namespace"';
  const panels = layout([
    {
      type: 'stat',
      title: 'Inbound request rate',
      unit: 'reqps',
      w: 8,
      h: 5,
      targets: [{ expr: sumRate('weft_requests_total', inbound) }],
    },
    {
      type: 'stat',
      title: 'Inbound success rate',
      unit: 'percentunit',
      w: 8,
      h: 5,
      targets: [{ expr: successRatio(inbound) }],
    },
    {
      type: 'stat',
      title: 'Inbound P99 latency',
      unit: 's',
      w: 8,
      h: 5,
      targets: [{ expr: quantile(0.99, 'weft_request_duration_seconds', inbound) }],
    },
    {
      title: 'Inbound requests by caller principal',
      unit: 'reqps',
      targets: [
        { expr: sumRate('weft_requests_total', inbound, 'source_principal'), legend: '{{source_principal}}' },
      ],
    },
    { title: 'Inbound latency', unit: 's', targets: latencyTargets(inbound) },
    {
      title: 'Outbound requests by destination',
      unit: 'reqps',
      targets: [
        {
          expr: sumRate('weft_requests_total', outbound, 'destination_service_name, destination_workload'),
          legend: '{{destination_service_name}} ({{destination_workload}})',
        },
      ],
    },
    {
      title: 'Outbound success rate by destination',
      unit: 'percentunit',
      max: 1,
      targets: [
        { expr: successRatio(outbound, 'destination_service_name'), legend: '{{destination_service_name}}' },
      ],
    },
    {
      title: 'Outbound P99 latency by destination',
      unit: 's',
      targets: [
        {
          expr: quantile(0.99, 'weft_request_duration_seconds', outbound, 'destination_service_name'),
          legend: '{{destination_service_name}}',
        },
      ],
    },
    {
      title: 'Outbound responses by code and flag',
      unit: 'reqps',
      targets: [
        {
          expr: sumRate('weft_requests_total', outbound, 'response_code, response_flags'),
          legend: '{{response_code}} {{response_flags}}',
        },
      ],
    },
  ]);
  return withLinks(
    dashboard(
      UIDS.workload,
      'Weft / Workload',
      'One workload: inbound traffic (server side, reporter="destination") and the calls it makes (client side).',
      [
        labelVariable('namespace', 'Namespace', 'destination_namespace'),
        labelVariable(
          'workload',
          'Workload',
          'destination_workload',
          '{destination_namespace=~"$namespace"}',
        ),
      ],
      panels,
    ),
  );
}

function controlPlane(): Dashboard {
  const cp = 'component="control-plane"';
  const panels = layout([
    {
      type: 'stat',
      title: 'Connected proxies',
      unit: 'none',
      w: 6,
      h: 5,
      targets: [{ expr: 'sum(weft_cp_connected_proxies)' }],
    },
    {
      type: 'stat',
      title: 'Config revision',
      unit: 'none',
      w: 6,
      h: 5,
      targets: [{ expr: 'max(weft_cp_config_revision)' }],
    },
    {
      type: 'stat',
      title: 'Time to certificate expiry',
      description: 'Issuing CA, first-expiring trusted root and serving certificate.',
      unit: 's',
      w: 12,
      h: 5,
      targets: [
        { expr: 'min by (cert) (weft_cp_cert_expiry_timestamp_seconds) - time()', legend: '{{cert}}' },
      ],
    },
    {
      title: 'Proxies by config version',
      description: 'How many proxies serve each config version (store revision): a rollout converges to one.',
      unit: 'none',
      targets: [{ expr: 'count by (version) (weft_proxy_config_version)', legend: '{{version}}' }],
    },
    {
      title: 'Pushes by result',
      unit: 'ops',
      targets: [{ expr: sumRate('weft_cp_pushes_total', '', 'type, result'), legend: '{{type}} {{result}}' }],
    },
    {
      title: 'NACKs',
      unit: 'ops',
      targets: [{ expr: sumRate('weft_cp_nacks_total', '', 'type'), legend: '{{type}}' }],
    },
    {
      title: 'Push → ACK latency',
      unit: 's',
      targets: [0.5, 0.99].map((q) => ({
        expr: quantile(q, 'weft_cp_push_duration_seconds', ''),
        legend: `p${q * 100}`,
      })),
    },
    {
      title: 'Store latency (p99) by operation',
      unit: 's',
      targets: [
        { expr: quantile(0.99, 'weft_cp_store_request_duration_seconds', '', 'op'), legend: '{{op}}' },
      ],
    },
    {
      title: 'Certificates issued',
      unit: 'ops',
      targets: [{ expr: sumRate('weft_cp_certificates_issued_total', '', 'via'), legend: '{{via}}' }],
    },
    {
      title: 'Control plane memory (RSS)',
      unit: 'bytes',
      targets: [{ expr: `sum by (instance) (process_resident_memory_bytes{${cp}})`, legend: '{{instance}}' }],
    },
    {
      title: 'Control plane CPU',
      unit: 'percentunit',
      targets: [
        { expr: `sum by (instance) (rate(process_cpu_seconds_total{${cp}}${RATE}))`, legend: '{{instance}}' },
      ],
    },
    {
      title: 'Event loop lag (p99)',
      unit: 's',
      targets: [
        { expr: `max by (instance) (nodejs_eventloop_lag_p99_seconds{${cp}})`, legend: '{{instance}}' },
      ],
    },
  ]);
  return withLinks(
    dashboard(
      UIDS.controlPlane,
      'Weft / Control plane',
      'Discovery (connected proxies, pushes, NACKs, push latency), config revision, CA expiry, store latency and the process.',
      [],
      panels,
    ),
  );
}

/** Edge labels: `source` / `target` workloads and `id` = `<source>-><target>`. */
function edgeLabelled(inner: string): string {
  return (
    'label_join(label_replace(label_replace(' +
    inner +
    ', "source", "$1", "source_workload", "(.*)"), "target", "$1", "destination_workload", "(.*)"), ' +
    '"id", "->", "source_workload", "destination_workload")'
  );
}

/** Node labels: `id` = `title` = the workload in `label`. */
function nodeLabelled(inner: string, label: string): string {
  return `label_replace(label_replace(${inner}, "id", "$1", "${label}", "(.*)"), "title", "$1", "${label}", "(.*)")`;
}

/** The Node Graph queries, by refId (exported for the integration test and `weft graph`). */
export function serviceGraphQueries(): Record<string, string> {
  const src = 'reporter="source", source_namespace=~"$namespace"';
  const dst = 'reporter="destination", destination_namespace=~"$namespace"';
  const edges = (selector: string, metric = 'weft_requests_total') =>
    edgeLabelled(`rate(${metric}{${selector}}${RATE})`);
  const nodesIn = (selector: string) =>
    nodeLabelled(`rate(weft_requests_total{${selector}}${RATE})`, 'destination_workload');
  return {
    // Nodes: every workload that serves (its inbound rate) or only calls (rate 0).
    nodes:
      `sum by (id, title) (${nodesIn(dst)})\nor\n` +
      `sum by (id, title) (0 * ${nodeLabelled(`rate(weft_requests_total{${src}}${RATE})`, 'source_workload')})`,
    nodes_success: `sum by (id) (${nodesIn(`${dst}, response_code!~"5.."`)})\n/\n(sum by (id) (${nodesIn(dst)}) > 0)`,
    nodes_errors: `(sum by (id) (${nodesIn(`${dst}, response_code=~"5.."`)}) or 0 * sum by (id) (${nodesIn(dst)}))\n/\n(sum by (id) (${nodesIn(dst)}) > 0)`,
    edges: `sum by (id, source, target) (${edges(src)})`,
    edges_errors:
      `100 * (sum by (id) (${edges(`${src}, response_code=~"5.."`)}) or 0 * sum by (id) (${edges(src)}))\n/\n` +
      `(sum by (id) (${edges(src)}) > 0)`,
    edges_p99: `histogram_quantile(0.99, sum by (le, id) (${edges(src, 'weft_request_duration_seconds_bucket')}))`,
  };
}

function serviceGraph(): Dashboard {
  const q = serviceGraphQueries();
  const byRefId = (pattern: string) => ({ id: 'byRefId', options: pattern });
  const nodeGraph: PanelSpec = {
    type: 'nodeGraph',
    title: 'Service graph',
    description:
      'Nodes: workloads (main stat: inbound req/s; arc: success vs 5xx share). Edges: source → destination workload (main stat: req/s, secondary: 5xx %, detail: p99 latency in seconds).',
    unit: 'none',
    w: 24,
    h: 16,
    targets: Object.entries(q).map(([refId, expr]) => ({ refId, expr })),
    transformations: [
      { id: 'joinByField', filter: byRefId('/^nodes/'), options: { byField: 'id', mode: 'outer' } },
      { id: 'joinByField', filter: byRefId('/^edges/'), options: { byField: 'id', mode: 'outer' } },
      {
        id: 'organize',
        options: {
          excludeByName: { Time: true, 'Time 1': true, 'Time 2': true, 'Time 3': true },
          renameByName: {
            'Value #nodes': 'mainStat',
            'Value #nodes_success': 'arc__success',
            'Value #nodes_errors': 'arc__errors',
            'Value #edges': 'mainStat',
            'Value #edges_errors': 'secondaryStat',
            'Value #edges_p99': 'detail__p99_seconds',
          },
        },
      },
    ],
    overrides: [
      { matcher: { id: 'byName', options: 'mainStat' }, properties: [{ id: 'unit', value: 'reqps' }] },
      { matcher: { id: 'byName', options: 'secondaryStat' }, properties: [{ id: 'unit', value: 'percent' }] },
      { matcher: { id: 'byName', options: 'detail__p99_seconds' }, properties: [{ id: 'unit', value: 's' }] },
      {
        matcher: { id: 'byName', options: 'arc__success' },
        properties: [{ id: 'color', value: { mode: 'fixed', fixedColor: 'green' } }],
      },
      {
        matcher: { id: 'byName', options: 'arc__errors' },
        properties: [{ id: 'color', value: { mode: 'fixed', fixedColor: 'red' } }],
      },
    ],
    options: {
      nodes: { mainStatUnit: 'reqps' },
      edges: { mainStatUnit: 'reqps', secondaryStatUnit: 'percent' },
    },
  };
  const edgeBy = 'source_workload, destination_workload';
  const table: PanelSpec = {
    type: 'table',
    title: 'Edges (recording rules)',
    description: 'From deploy/prometheus/rules/weft-service-graph.yml: rate, 5xx ratio and p99 per edge.',
    unit: 'none',
    w: 24,
    targets: [
      {
        refId: 'rate',
        expr: `sum by (${edgeBy}) (edge:weft_requests:rate1m{source_namespace=~"$namespace"})`,
      },
      {
        refId: 'errors',
        expr: `sum by (${edgeBy}) (edge:weft_request_error_ratio:rate1m{source_namespace=~"$namespace"})`,
      },
      {
        refId: 'p99',
        expr: `max by (${edgeBy}) (edge:weft_request_duration_seconds:p99_rate1m{source_namespace=~"$namespace"})`,
      },
    ],
    transformations: [
      { id: 'merge', options: {} },
      {
        id: 'organize',
        options: {
          excludeByName: { Time: true },
          renameByName: { 'Value #rate': 'req/s', 'Value #errors': '5xx ratio', 'Value #p99': 'p99 (s)' },
        },
      },
    ],
    overrides: [
      { matcher: { id: 'byName', options: 'req/s' }, properties: [{ id: 'unit', value: 'reqps' }] },
      { matcher: { id: 'byName', options: '5xx ratio' }, properties: [{ id: 'unit', value: 'percentunit' }] },
      { matcher: { id: 'byName', options: 'p99 (s)' }, properties: [{ id: 'unit', value: 's' }] },
    ],
  };
  const panels: Panel[] = layout([nodeGraph, table]);
  return withLinks(
    dashboard(
      UIDS.serviceGraph,
      'Weft / Service graph',
      'Who calls whom: workloads and the edges between them, from the callers (reporter="source").',
      [labelVariable('namespace', 'Namespace', 'source_namespace')],
      panels,
    ),
  );
}

/** Every dashboard, by file name (without `.json`). */
export function dashboards(): Record<string, Dashboard> {
  return {
    'weft-mesh': meshOverview(),
    'weft-service': service(),
    'weft-workload': workload(),
    'weft-control-plane': controlPlane(),
    'weft-service-graph': serviceGraph(),
  };
}
