/**
 * Linux /proc readers for the benchmark: a process's CPU time (utime + stime from
 * /proc/<pid>/stat, in clock ticks) and resident set size (VmRSS from /proc/<pid>/status).
 * Only the process itself is counted (all its threads), not its children; each proxy runs as one
 * process here. Also the machine-wide busy time from /proc/stat, so a run can say how much CPU
 * went to processes other than the ones under test (background noise).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticksPerSecond: number | undefined;

/** `getconf CLK_TCK` (the unit of utime/stime), usually 100; falls back to 100. */
export function clockTicksPerSecond(): number {
  if (ticksPerSecond === undefined) {
    try {
      const value = Number.parseInt(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim(), 10);
      ticksPerSecond = Number.isFinite(value) && value > 0 ? value : 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** utime + stime of `pid`, in clock ticks. */
export function readCpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return parseCpuTicks(stat);
}

/** Parses a /proc/<pid>/stat line: fields 14 (utime) and 15 (stime), counted after the `(comm)` field. */
export function parseCpuTicks(stat: string): number {
  // comm (field 2) is in parentheses and may contain spaces or ')' itself: split after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state), so field N is rest[N - 3].
  const utime = Number(rest[14 - 3]);
  const stime = Number(rest[15 - 3]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime))
    throw new Error(`unexpected /proc stat line: ${stat}`);
  return utime + stime;
}

/** cutime + cstime of `pid` (CPU of its children that have exited and been reaped), in seconds. */
export function readReapedChildrenCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[16 - 3]) + Number(rest[17 - 3])) / clockTicksPerSecond();
}

/** CPU seconds used by `pid` so far. */
export function readCpuSeconds(pid: number): number {
  return readCpuTicks(pid) / clockTicksPerSecond();
}

/** VmRSS of `pid`, in bytes. */
export function readRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!match?.[1]) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/**
 * Machine-wide CPU seconds spent in processes (user, nice, system). irq and softirq time are left
 * out: on loopback they are mostly the benchmark's own packets, not another process's work.
 */
export function readSystemBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  const [user = 0, nice = 0, system = 0] = line.trim().split(/\s+/).slice(1).map(Number);
  return (user + nice + system) / clockTicksPerSecond();
}
