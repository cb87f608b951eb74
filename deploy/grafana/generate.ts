/**
 * Writes Weft's Grafana dashboards (dashboards.ts) to `deploy/grafana/dashboards/<name>.json`.
 * Run after changing a dashboard: `npx node deploy/grafana/generate.ts`; the unit test
 * (test/unit/deploy/grafana-dashboards.test.ts) fails while a file differs from its source.
 */
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { dashboards } from './dashboards.ts';

export const DASHBOARD_DIR = fileURLToPath(new URL('./dashboards/', import.meta.url));

/** The file text of a dashboard: 2-space JSON and a final newline. */
export function dashboardText(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const [name, dashboard] of Object.entries(dashboards())) {
    await writeFile(`${DASHBOARD_DIR}${name}.json`, dashboardText(dashboard));
    process.stdout.write(`wrote deploy/grafana/dashboards/${name}.json\n`);
  }
}
