/**
 * What the fault scenarios measure about a process and how they print it: open file descriptors
 * and sockets (`/proc/<pid>/fd`), resident set size (`/proc/<pid>/status` VmRSS), and one JSON
 * line per scenario (`{"scenario": ..., ...figures}`) on stdout, the line docs/reliability.md quotes.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';

/** Open descriptors of `pid`: all of them, and how many are sockets. */
export async function fdCount(pid: number): Promise<{ fds: number; sockets: number }> {
  const entries = await readdir(`/proc/${pid}/fd`);
  let sockets = 0;
  for (const fd of entries) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    if (target.startsWith('socket:')) sockets++;
  }
  return { fds: entries.length, sockets };
}

/** Resident set size of `pid` in MiB (VmRSS). */
export async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = Number(/^VmRSS:\s+(\d+)\s+kB$/m.exec(status)?.[1] ?? Number.NaN);
  return Math.round((kib / 1024) * 10) / 10;
}

/** Prints the figures of `scenario` as one JSON line (prefixed `[faults]` for grepping). */
export function printFigures(scenario: string, figures: Record<string, unknown>): void {
  console.log(`[faults] ${JSON.stringify({ scenario, ...figures })}`);
}

/**
 * The V8 heap of a proxy from its admin `/metrics` text (prom-client's default process metrics), in
 * MiB: `total` (nodejs_heap_size_total_bytes, what V8 has reserved), `used`
 * (nodejs_heap_size_used_bytes) and `external` (nodejs_external_memory_bytes: Buffers and the like).
 */
export function heapMiB(metrics: string): { total: number; used: number; external: number } {
  const mib = (name: string): number => {
    const value = Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1] ?? Number.NaN);
    return Math.round((value / 1048576) * 10) / 10;
  };
  return {
    total: mib('nodejs_heap_size_total_bytes'),
    used: mib('nodejs_heap_size_used_bytes'),
    external: mib('nodejs_external_memory_bytes'),
  };
}
