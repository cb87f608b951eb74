/**
 * Closed-loop throughput with wrk (`wrk -t1 -c50 -d<N>s --latency <url>`): runs it as a tracked
 * child and parses its text report — Requests/sec, the latency summary and distribution,
 * socket errors and "Non-2xx or 3xx responses".
 *
 * wrk's latencies are closed-loop (a slow response delays the next request on that connection,
 * so they understate tail latency: coordinated omission); the open-loop generator measures those.
 */
import { lastLines, startChild } from './children.ts';

export interface WrkOptions {
  readonly threads: number;
  readonly connections: number;
  readonly durationS: number;
}

export interface WrkResult {
  readonly requestsPerSec: number;
  readonly requests: number;
  readonly durationS: number;
  readonly latencyMs: {
    readonly avg: number;
    readonly stdev: number;
    readonly max: number;
    readonly p50: number | null;
    readonly p90: number | null;
    readonly p99: number | null;
  };
  readonly socketErrors: {
    readonly connect: number;
    readonly read: number;
    readonly write: number;
    readonly timeout: number;
  };
  /** wrk counts status >= 400 here (it prints "Non-2xx or 3xx responses"). */
  readonly non2xx3xx: number;
}

export async function runWrk(wrkPath: string, url: string, options: WrkOptions): Promise<WrkResult> {
  const args = [
    `-t${options.threads}`,
    `-c${options.connections}`,
    `-d${options.durationS}s`,
    '--timeout',
    '10s',
    '--latency',
    url,
  ];
  const wrk = await startChild('wrk', wrkPath, args);
  let stdout = '';
  wrk.child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
  });
  const exit = await wrk.exited;
  if (exit.code !== 0) {
    throw new Error(`wrk exited ${exit.code ?? exit.signal}: ${lastLines(wrk.output(), 2)}`);
  }
  return parseWrk(stdout);
}

/** Parses wrk's report. Throws if the Requests/sec or latency lines are missing. */
export function parseWrk(text: string): WrkResult {
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(text);
  const latency = /^\s*Latency\s+(\S+)\s+(\S+)\s+(\S+)\s+\S+%/m.exec(text);
  const total = /^\s*(\d+) requests in ([\d.]+\w+),/m.exec(text);
  if (!rps?.[1] || !latency?.[1] || !latency[2] || !latency[3] || !total?.[1] || !total[2]) {
    throw new Error(`cannot parse wrk output: ${lastLines(text, 3)}`);
  }
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  return {
    requestsPerSec: Number(rps[1]),
    requests: Number(total[1]),
    durationS: parseDurationMs(total[2]) / 1000,
    latencyMs: {
      avg: parseDurationMs(latency[1]),
      stdev: parseDurationMs(latency[2]),
      max: parseDurationMs(latency[3]),
      p50: percentile(text, '50'),
      p90: percentile(text, '90'),
      p99: percentile(text, '99'),
    },
    socketErrors: {
      connect: Number(socket?.[1] ?? 0),
      read: Number(socket?.[2] ?? 0),
      write: Number(socket?.[3] ?? 0),
      timeout: Number(socket?.[4] ?? 0),
    },
    non2xx3xx: Number(non2xx?.[1] ?? 0),
  };
}

/** wrk's duration format: a number with one of us, ms, s, m, h. */
export function parseDurationMs(value: string): number {
  const match = /^([\d.]+)(us|ms|s|m|h)$/.exec(value.trim());
  if (!match?.[1] || !match[2]) throw new Error(`cannot parse wrk duration "${value}"`);
  const scale: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  return Number(match[1]) * (scale[match[2]] ?? Number.NaN);
}

function percentile(text: string, pct: string): number | null {
  const match = new RegExp(`^\\s+${pct}%\\s+(\\S+)$`, 'm').exec(text);
  return match?.[1] ? parseDurationMs(match[1]) : null;
}
