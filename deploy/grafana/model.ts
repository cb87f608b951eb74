/**
 * The slice of Grafana's dashboard JSON model (schemaVersion 39, Grafana 10.4+) that Weft's
 * dashboards use, and small builders for it. Every target's datasource is the `${datasource}`
 * variable (a Prometheus data source chosen at view time); every `rate()` window is
 * `$__rate_interval`. Reference: https://grafana.com/docs/grafana/latest/dashboards/build-dashboards/view-dashboard-json-model/
 */

/** Pinned dashboard schema version (Grafana 10.4). */
export const SCHEMA_VERSION = 39;

/** The data source reference of every panel and target. */
// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a template.
export const DATASOURCE = { type: 'prometheus', uid: '${datasource}' } as const;

export interface Target {
  readonly refId: string;
  readonly expr: string;
  readonly datasource: typeof DATASOURCE;
  readonly legendFormat?: string;
  /** Instant query (one value per series), e.g. for tables and the node graph. */
  readonly instant?: boolean;
  readonly range?: boolean;
  readonly format?: 'time_series' | 'table';
}

export interface Panel {
  readonly id: number;
  readonly type: 'timeseries' | 'stat' | 'table' | 'nodeGraph' | 'row';
  readonly title: string;
  readonly description?: string;
  readonly gridPos: { readonly x: number; readonly y: number; readonly w: number; readonly h: number };
  readonly datasource: typeof DATASOURCE;
  readonly targets: readonly Target[];
  readonly fieldConfig: {
    readonly defaults: Record<string, unknown> & { readonly unit?: string };
    readonly overrides: readonly unknown[];
  };
  readonly options: Record<string, unknown>;
  readonly transformations?: readonly unknown[];
}

export interface Variable {
  readonly name: string;
  readonly label: string;
  readonly type: 'datasource' | 'query';
  readonly query: string | { readonly query: string; readonly refId: string };
  readonly datasource?: typeof DATASOURCE;
  readonly includeAll?: boolean;
  readonly allValue?: string;
  readonly multi?: boolean;
  readonly refresh?: number;
  readonly current?: Record<string, unknown>;
  readonly hide?: number;
}

export interface Dashboard {
  readonly uid: string;
  readonly title: string;
  readonly description: string;
  readonly tags: readonly string[];
  readonly schemaVersion: number;
  readonly version: number;
  readonly editable: boolean;
  readonly timezone: string;
  readonly refresh: string;
  readonly time: { readonly from: string; readonly to: string };
  readonly templating: { readonly list: readonly Variable[] };
  readonly links: readonly { readonly title: string; readonly type: 'link'; readonly url: string }[];
  readonly panels: readonly Panel[];
}

/** The `datasource` variable: any Prometheus data source. */
export const datasourceVariable: Variable = {
  name: 'datasource',
  label: 'Data source',
  type: 'datasource',
  query: 'prometheus',
  current: {},
  hide: 0,
};

/** A multi-value query variable over a label of `weft_requests_total` (All = `.*`). */
export function labelVariable(name: string, label: string, labelName: string, selector = ''): Variable {
  const query = `label_values(weft_requests_total${selector}, ${labelName})`;
  return {
    name,
    label,
    type: 'query',
    datasource: DATASOURCE,
    query: { query, refId: `${name}-query` },
    includeAll: true,
    allValue: '.*',
    multi: true,
    refresh: 2,
    current: {},
    hide: 0,
  };
}

export interface PanelSpec {
  readonly type?: Panel['type'];
  readonly title: string;
  readonly description?: string;
  readonly unit: string;
  /** Width in grid columns (24 per row); default 12. */
  readonly w?: number;
  readonly h?: number;
  readonly targets: readonly { readonly expr: string; readonly legend?: string; readonly refId?: string }[];
  readonly instant?: boolean;
  readonly overrides?: readonly unknown[];
  readonly options?: Record<string, unknown>;
  readonly transformations?: readonly unknown[];
  readonly min?: number;
  readonly max?: number;
}

/** Lays panels out left to right, wrapping at 24 columns, and numbers them from 1. */
export function layout(specs: readonly PanelSpec[]): Panel[] {
  let x = 0;
  let y = 0;
  let rowHeight = 0;
  return specs.map((spec, i) => {
    const w = spec.w ?? 12;
    const h = spec.h ?? 8;
    if (x + w > 24) {
      x = 0;
      y += rowHeight;
      rowHeight = 0;
    }
    const gridPos = { x, y, w, h };
    x += w;
    rowHeight = Math.max(rowHeight, h);
    const type = spec.type ?? 'timeseries';
    const instant = spec.instant ?? (type === 'table' || type === 'nodeGraph');
    return {
      id: i + 1,
      type,
      title: spec.title,
      ...(spec.description !== undefined && { description: spec.description }),
      gridPos,
      datasource: DATASOURCE,
      targets: spec.targets.map((t, j) => ({
        refId: t.refId ?? String.fromCharCode(65 + j),
        expr: t.expr,
        datasource: DATASOURCE,
        ...(t.legend !== undefined && { legendFormat: t.legend }),
        ...(instant ? { instant: true, range: false, format: 'table' as const } : { range: true }),
      })),
      fieldConfig: {
        defaults: {
          unit: spec.unit,
          ...(spec.min !== undefined && { min: spec.min }),
          ...(spec.max !== undefined && { max: spec.max }),
        },
        overrides: spec.overrides ?? [],
      },
      options: spec.options ?? {},
      ...(spec.transformations !== undefined && { transformations: spec.transformations }),
    };
  });
}

/** A dashboard with the common settings. */
export function dashboard(
  uid: string,
  title: string,
  description: string,
  variables: readonly Variable[],
  panels: readonly Panel[],
): Dashboard {
  return {
    uid,
    title,
    description,
    tags: ['weft'],
    schemaVersion: SCHEMA_VERSION,
    version: 1,
    editable: true,
    timezone: 'browser',
    refresh: '30s',
    time: { from: 'now-1h', to: 'now' },
    templating: { list: [datasourceVariable, ...variables] },
    links: [],
    panels,
  };
}
