import { closeSync, openSync } from 'node:fs';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import {
  logDestination,
  logDropCounts,
  registerLogMetrics,
} from '../../../sidecar/proxy/telemetry/log-destination.ts';
import { pollUntil } from '../../support/mesh.ts';

describe('log destination', () => {
  it('a failing sink (/dev/full: ENOSPC) is counted, never thrown, and the metrics show it', async () => {
    const fd = openSync('/dev/full', 'w');
    try {
      const before = logDropCounts();
      const dest = logDestination(fd);
      for (let i = 0; i < 10; i++) dest.write(`{"line":${i}}\n`);
      await pollUntil('a write error to be counted', () =>
        logDropCounts().errors > before.errors ? true : undefined,
      );
      const registry = new Registry();
      registerLogMetrics(registry);
      expect(await registry.getSingleMetricAsString('weft_log_write_errors_total')).toMatch(
        new RegExp(`weft_log_write_errors_total ${logDropCounts().errors}`),
      );
    } finally {
      closeSync(fd);
    }
  });
});
