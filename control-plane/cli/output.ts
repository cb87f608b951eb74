/**
 * CLI output: plain-text tables (default), JSON and YAML, and optional colour.
 *
 * Colour only when stdout is a TTY and neither `NO_COLOR` nor `NODE_DISABLE_COLORS` is set
 * (https://no-color.org); machine formats (`-o json|yaml`) never carry colour.
 */
import { stripVTControlCharacters, styleText } from 'node:util';
import { stringify } from 'yaml';

export const FORMATS = ['table', 'json', 'yaml'] as const;
export type Format = (typeof FORMATS)[number];

/** Writes one line (or several, joined) to stdout. */
export function out(...lines: string[]): void {
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** Writes `value` as pretty JSON or YAML. */
export function printData(value: unknown, format: 'json' | 'yaml'): void {
  process.stdout.write(format === 'json' ? `${JSON.stringify(value, null, 2)}\n` : stringify(value));
}

/** True when colour may be written to stdout. */
export function colourEnabled(stream: NodeJS.WriteStream = process.stdout): boolean {
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '') return false;
  if (process.env.NODE_DISABLE_COLORS !== undefined) return false;
  return stream.isTTY === true;
}

/** `text` in `colour` when colour is enabled, else unchanged. */
export function paint(colour: 'green' | 'red' | 'yellow' | 'bold', text: string): string {
  return colourEnabled() ? styleText(colour, text, { validateStream: false }) : text;
}

/**
 * Formats rows as a left-aligned table with a header; columns are separated by three spaces.
 * Cell widths are measured without ANSI colour codes.
 */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const visible = (s: string): number => stripVTControlCharacters(s).length;
  const widths = header.map((h, i) => Math.max(visible(h), ...rows.map((r) => visible(r[i] ?? ''))));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat((widths[i] ?? 0) - visible(c))))
      .join('   ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** A coarse age like kubectl's (`45s`, `12m`, `3h`, `5d`) from an RFC 3339 time; `-` when unknown. */
export function age(since: string | undefined, now = Date.now()): string {
  const t = since ? Date.parse(since) : Number.NaN;
  if (Number.isNaN(t)) return '-';
  const s = Math.max(0, Math.floor((now - t) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}
