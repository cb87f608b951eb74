/**
 * Benchmark report: per-target figures, ratios (to direct, and Weft to nginx/HAProxy) and the
 * plain-text table `run.ts` prints. Figures only — nothing here judges them.
 */
import type { OpenLoopMeasurement, WrkMeasurement } from './measure.ts';
import type { TargetName } from './targets.ts';
import type { WrkResult } from './wrk.ts';

export interface TargetReport {
  readonly name: TargetName;
  /** 'unavailable' when the target could not be started (reason says why). */
  readonly status: 'ok' | 'unavailable';
  readonly reason: string | null;
  readonly version: string | null;
  readonly workers: string | null;
  readonly wrk: WrkMeasurement | null;
  readonly wrkError: string | null;
  readonly openLoop: OpenLoopMeasurement | null;
  readonly openLoopError: string | null;
}

export interface Ratios {
  readonly requestsPerSec: number | null;
  readonly p50: number | null;
  readonly p99: number | null;
  readonly cpuPer1kReq: number | null;
  readonly rss: number | null;
}

/** a / b for each figure, null when either side is missing. */
export function ratios(a: TargetReport | undefined, b: TargetReport | undefined): Ratios {
  const div = (x: number | undefined, y: number | undefined): number | null =>
    x === undefined || y === undefined || y === 0 ? null : x / y;
  return {
    requestsPerSec: div(a?.wrk?.result.requestsPerSec, b?.wrk?.result.requestsPerSec),
    p50: div(a?.openLoop?.result.latencyMs.p50, b?.openLoop?.result.latencyMs.p50),
    p99: div(a?.openLoop?.result.latencyMs.p99, b?.openLoop?.result.latencyMs.p99),
    cpuPer1kReq: div(a?.openLoop?.cpuMsPer1kReq, b?.openLoop?.cpuMsPer1kReq),
    rss: div(a?.openLoop?.rssMiB, b?.openLoop?.rssMiB),
  };
}

/** Background CPU (% of one core) above which a row's open-loop figures are flagged as disturbed. */
export const NOISY_OTHER_CPU_PERCENT = 20;

const COLUMNS = [
  ['target', 8],
  ['wrk req/s', 10],
  ['x direct', 9],
  ['p50 ms', 8],
  ['p99 ms', 8],
  ['p99 x direct', 13],
  ['errors', 7],
  ['CPU ms/1k req', 14],
  ['RSS MiB', 8],
] as const;

export function formatTable(reports: readonly TargetReport[]): string {
  const direct = reports.find((r) => r.name === 'direct');
  const lines = [
    COLUMNS.map(([title, width], i) => (i === 0 ? title.padEnd(width) : title.padStart(width))).join('  '),
  ];
  lines.push(COLUMNS.map(([, width]) => '-'.repeat(width)).join('  '));
  for (const report of reports) {
    if (report.status === 'unavailable') {
      lines.push(`${report.name.padEnd(COLUMNS[0][1])}  unavailable: ${report.reason ?? 'unknown'}`);
      continue;
    }
    const toDirect = ratios(report, direct);
    const ol = report.openLoop;
    const errors = ol ? ol.result.errors + ol.result.non2xx : null;
    const wrkErrors = report.wrk ? wrkErrorCount(report.wrk.result) : 0;
    const cells = [
      report.name,
      report.wrk ? fmt(report.wrk.result.requestsPerSec, 0) + (wrkErrors > 0 ? '!' : '') : 'n/a',
      fmtRatio(toDirect.requestsPerSec),
      ol ? fmt(ol.result.latencyMs.p50, 2) : 'n/a',
      ol ? fmt(ol.result.latencyMs.p99, 2) : 'n/a',
      fmtRatio(toDirect.p99),
      errors === null ? 'n/a' : String(errors),
      ol ? fmt(ol.cpuMsPer1kReq, 1) : 'n/a',
      ol ? fmt(ol.rssMiB, 1) : 'n/a',
    ];
    lines.push(cells.map((cell, i) => pad(cell, COLUMNS[i]?.[1] ?? 0, i === 0)).join('  '));
    if (report.wrkError) lines.push(`${' '.repeat(10)}wrk failed: ${report.wrkError}`);
    if (report.openLoopError) lines.push(`${' '.repeat(10)}open loop failed: ${report.openLoopError}`);
    if (wrkErrors > 0)
      lines.push(`${' '.repeat(10)}! wrk errors: ${describeWrkErrors(report.wrk?.result ?? null)}`);
  }
  return lines.join('\n');
}

/** Open-loop detail: the full latency summary, the generator's own send lag and the upstream's CPU. */
export function formatOpenLoopDetail(reports: readonly TargetReport[]): string {
  const head = [
    'target',
    'ok/s',
    'p50',
    'p90',
    'p99',
    'p99.9',
    'max',
    'send lag p99',
    'upstream CPU/1k',
    'gen CPU/1k',
    'other CPU %',
  ];
  const widths = [8, 7, 7, 7, 7, 7, 7, 13, 16, 11, 12];
  const row = (cells: readonly string[]): string =>
    cells.map((cell, i) => pad(cell, widths[i] ?? 0, i === 0)).join('  ');
  const lines = [row(head), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const report of reports) {
    const ol = report.openLoop;
    if (!ol) continue;
    const l = ol.result.latencyMs;
    lines.push(
      row([
        report.name,
        fmt(ol.result.achievedRate, 0),
        fmt(l.p50, 2),
        fmt(l.p90, 2),
        fmt(l.p99, 2),
        fmt(l.p999, 2),
        fmt(l.max, 2),
        fmt(ol.result.sendLagMs.p99, 2),
        fmt(ol.upstreamCpuMsPer1kReq, 1),
        fmt(ol.generatorCpuMsPer1kReq, 1),
        fmt(ol.otherCpuPercent, 0),
      ]),
    );
  }
  return lines.join('\n');
}

/** wrk detail: closed-loop latency and who was using the CPU (100% = one core). */
export function formatWrkDetail(reports: readonly TargetReport[]): string {
  const head = [
    'target',
    'req/s',
    'p50',
    'p99',
    'max',
    'target CPU %',
    'upstream CPU %',
    'wrk CPU %',
    'other CPU %',
  ];
  const widths = [8, 8, 7, 7, 7, 13, 15, 10, 12];
  const row = (cells: readonly string[]): string =>
    cells.map((cell, i) => pad(cell, widths[i] ?? 0, i === 0)).join('  ');
  const lines = [row(head), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const report of reports) {
    const w = report.wrk;
    if (!w) continue;
    const l = w.result.latencyMs;
    lines.push(
      row([
        report.name,
        fmt(w.result.requestsPerSec, 0),
        l.p50 === null ? 'n/a' : fmt(l.p50, 2),
        l.p99 === null ? 'n/a' : fmt(l.p99, 2),
        fmt(l.max, 2),
        fmt(w.targetCpuPercent, 0),
        report.name === 'direct' ? '-' : fmt(w.upstreamCpuPercent, 0),
        fmt(w.wrkCpuPercent, 0),
        fmt(w.otherCpuPercent, 0),
      ]),
    );
  }
  return lines.join('\n');
}

/** A warning naming the phases during which other processes used a noticeable share of the CPU. */
export function formatNoise(reports: readonly TargetReport[]): string | null {
  const noisy: string[] = [];
  for (const r of reports) {
    if (r.wrk && r.wrk.otherCpuPercent > NOISY_OTHER_CPU_PERCENT) noisy.push(`${r.name} wrk`);
    if (r.openLoop && r.openLoop.otherCpuPercent > NOISY_OTHER_CPU_PERCENT) noisy.push(`${r.name} open loop`);
  }
  if (noisy.length === 0) return null;
  return (
    `note: processes outside the benchmark used more than ${NOISY_OTHER_CPU_PERCENT}% of a core during ` +
    `${noisy.join(', ')}; those figures are disturbed (rerun on a quiet machine).`
  );
}

export function formatRatios(label: string, r: Ratios, missing: string | null): string {
  if (missing) return `${label.padEnd(13)} n/a (${missing})`;
  return (
    `${label.padEnd(13)} req/s ${fmtRatio(r.requestsPerSec)}   p50 ${fmtRatio(r.p50)}   p99 ${fmtRatio(r.p99)}` +
    `   CPU/1k req ${fmtRatio(r.cpuPer1kReq)}   RSS ${fmtRatio(r.rss)}`
  );
}

export function wrkErrorCount(wrk: WrkResult): number {
  const s = wrk.socketErrors;
  return wrk.non2xx3xx + s.connect + s.read + s.write + s.timeout;
}

function describeWrkErrors(wrk: WrkResult | null): string {
  if (!wrk) return '';
  const s = wrk.socketErrors;
  return `non-2xx/3xx ${wrk.non2xx3xx}, socket connect ${s.connect} read ${s.read} write ${s.write} timeout ${s.timeout}`;
}

function pad(cell: string, width: number, left: boolean): string {
  return left ? cell.padEnd(width) : cell.padStart(width);
}

function fmt(value: number, digits: number): string {
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function fmtRatio(value: number | null): string {
  return value === null ? 'n/a' : `${value.toFixed(2)}x`;
}
