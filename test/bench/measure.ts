/**
 * Measures one running target: wrk throughput (closed loop), then the open-loop generator at a
 * fixed rate while sampling the target's CPU time from /proc at the start and end of the measured
 * window (the generator reports both over IPC), then the target's RSS. The upstream, the generator
 * and the rest of the machine are sampled over the same window, to show cost and background noise.
 *
 * CPU-ms per 1k req = CPU seconds in the window / window seconds / (rate / 1000) x 1000.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { nextMessage, startChild, stopChild } from './children.ts';
import { isOpenLoopMessage, type OpenLoopMessage, type OpenLoopResult } from './openloop.ts';
import { readCpuSeconds, readReapedChildrenCpuSeconds, readRssBytes, readSystemBusySeconds } from './proc.ts';
import type { Target } from './targets.ts';
import { runWrk, type WrkOptions, type WrkResult } from './wrk.ts';

export interface Settings {
  readonly durationS: number;
  readonly warmupS: number;
  readonly rate: number;
  readonly wrk: WrkOptions;
  readonly openLoopConnections: number;
  /** Longest wait for background load to settle before each phase (0 = none). */
  readonly quietWaitS: number;
}

export interface OpenLoopMeasurement {
  readonly result: OpenLoopResult;
  /** Length of the sampled window, by the harness's clock. */
  readonly windowS: number;
  readonly cpuMsPer1kReq: number;
  /** The upstream's CPU over the same window (for proxies: the part of the cost that is not the proxy's). */
  readonly upstreamCpuMsPer1kReq: number;
  /** The open-loop generator's own CPU over the window. */
  readonly generatorCpuMsPer1kReq: number;
  /**
   * CPU busy time of everything else on the machine during the window, in % of one core (machine
   * busy time from /proc/stat minus target, upstream, generator and harness). High values mean
   * background load disturbed the run.
   */
  readonly otherCpuPercent: number;
  readonly rssMiB: number;
}

interface Sample {
  readonly atMs: number;
  readonly target: number;
  readonly upstream: number;
  readonly generator: number;
  readonly harness: number;
  readonly system: number;
}

function sample(pids: { target: number; upstream: number; generator: number; harness: number }): Sample {
  return {
    atMs: performance.now(),
    target: readCpuSeconds(pids.target),
    upstream: readCpuSeconds(pids.upstream),
    generator: readCpuSeconds(pids.generator),
    harness: readCpuSeconds(pids.harness),
    system: readSystemBusySeconds(),
  };
}

/**
 * Waits (at most `maxWaitS`) until processes other than `pids` use less than `thresholdPercent` of
 * a core over a 0.5 s sample, so a burst of background work (a test run, a compile) does not land
 * in a measurement. Returns the last sample's background CPU, in % of one core.
 */
export async function waitForQuiet(
  pids: readonly number[],
  maxWaitS: number,
  thresholdPercent: number,
): Promise<number> {
  const deadline = performance.now() + maxWaitS * 1000;
  const ours = (): number =>
    [...new Set([...pids, process.pid])].reduce((sum, pid) => sum + readCpuSeconds(pid), 0);
  for (;;) {
    const t0 = performance.now();
    const sys0 = readSystemBusySeconds();
    const ours0 = ours();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const windowS = (performance.now() - t0) / 1000;
    const other = Math.max(0, ((readSystemBusySeconds() - sys0 - (ours() - ours0)) / windowS) * 100);
    if (other < thresholdPercent || performance.now() >= deadline) return other;
  }
}

export interface WrkMeasurement {
  readonly result: WrkResult;
  /** CPU use during the wrk run, in % of one core (100 = one core saturated). */
  readonly targetCpuPercent: number;
  readonly upstreamCpuPercent: number;
  readonly wrkCpuPercent: number;
  /** Busy time of processes other than target, upstream, wrk and harness, in % of one core. */
  readonly otherCpuPercent: number;
}

export async function measureWrk(
  wrkPath: string,
  target: Target,
  upstreamPid: number,
  settings: Settings,
): Promise<WrkMeasurement> {
  // wrk's own CPU is read afterwards from our cutime/cstime: it is the only child reaped meanwhile.
  const read = () => ({
    atMs: performance.now(),
    target: readCpuSeconds(target.pid),
    upstream: readCpuSeconds(upstreamPid),
    harness: readCpuSeconds(process.pid),
    reaped: readReapedChildrenCpuSeconds(process.pid),
    system: readSystemBusySeconds(),
  });
  const a = read();
  const result = await runWrk(wrkPath, target.url, settings.wrk);
  const b = read();
  const windowS = (b.atMs - a.atMs) / 1000;
  const pct = (seconds: number): number => (seconds / windowS) * 100;
  const targetS = b.target - a.target;
  const upstreamS = target.pid === upstreamPid ? 0 : b.upstream - a.upstream;
  const wrkS = b.reaped - a.reaped;
  const ours = targetS + upstreamS + wrkS + (b.harness - a.harness);
  return {
    result,
    targetCpuPercent: pct(targetS),
    upstreamCpuPercent: pct(b.upstream - a.upstream),
    wrkCpuPercent: pct(wrkS),
    otherCpuPercent: Math.max(0, pct(b.system - a.system - ours)),
  };
}

export async function measureOpenLoop(
  target: Target,
  upstreamPid: number,
  settings: Settings,
): Promise<OpenLoopMeasurement> {
  const generator = await startChild(
    'openloop',
    process.execPath,
    [
      join(import.meta.dirname, 'openloop.ts'),
      '--url',
      target.url,
      '--rate',
      String(settings.rate),
      '--duration',
      String(settings.durationS),
      '--warmup',
      String(settings.warmupS),
      '--connections',
      String(settings.openLoopConnections),
    ],
    { ipc: true },
  );
  try {
    const budgetMs = (settings.warmupS + settings.durationS) * 1000 + 30_000;
    // Sample inside the message handler: 'measuring' and 'sending-done' can arrive back to back.
    const pids = {
      target: target.pid,
      upstream: upstreamPid,
      generator: generator.pid,
      harness: process.pid,
    };
    let first: Sample | undefined;
    let last: Sample | undefined;
    const onMessage = (message: unknown): void => {
      if (!isOpenLoopMessage(message)) return;
      if (message.type === 'measuring') first = sample(pids);
      else if (message.type === 'sending-done') last = sample(pids);
    };
    generator.child.on('message', onMessage);
    const { result } = await nextMessage(generator, isResult, budgetMs);
    generator.child.off('message', onMessage);
    const a = first;
    const b = last;
    if (!a || !b) throw new Error('openloop: result without measuring/sending-done messages');
    const rssMiB = readRssBytes(target.pid) / (1024 * 1024);
    const windowS = (b.atMs - a.atMs) / 1000;
    const delta = (key: keyof Sample): number => b[key] - a[key];
    const per1k = (cpuS: number): number => (cpuS / windowS / (settings.rate / 1000)) * 1000;
    // Busy time of everything else on the machine: system busy minus our four processes.
    const ours =
      delta('target') +
      (target.pid === upstreamPid ? 0 : delta('upstream')) +
      delta('generator') +
      delta('harness');
    return {
      result,
      windowS,
      cpuMsPer1kReq: per1k(delta('target')),
      upstreamCpuMsPer1kReq: per1k(delta('upstream')),
      generatorCpuMsPer1kReq: per1k(delta('generator')),
      otherCpuPercent: Math.max(0, ((delta('system') - ours) / windowS) * 100),
      rssMiB,
    };
  } finally {
    await stopChild(generator);
  }
}

function isResult(message: unknown): message is Extract<OpenLoopMessage, { type: 'result' }> {
  return isOpenLoopMessage(message) && message.type === 'result';
}
