/**
 * `npm run bench`: Weft's sidecar against nginx and HAProxy as keep-alive HTTP/1.1 reverse
 * proxies in front of the same Node upstream, plus the upstream alone ("direct"), on loopback.
 *
 * For each target, in turn: wrk closed-loop throughput, then an open-loop constant-rate latency
 * run (test/bench/openloop.ts) during which the target's CPU is sampled from /proc, then its RSS.
 * Prints a table and writes test/bench/results/<timestamp>.json and latest.json. Reports only;
 * nothing here asserts a speed.
 *
 * Environment: BENCH_DURATION_S (10, per phase), BENCH_RATE (2000 req/s), BENCH_WARMUP_S (1,
 * open-loop warm-up before measuring), BENCH_TARGETS (comma list, default "weft,nginx,haproxy";
 * direct always runs), BENCH_QUIET_WAIT_S (10: before each phase, wait up to this long for
 * background CPU from other processes to drop below 20% of a core; 0 = don't wait).
 * Every child process is started and killed by pid via children.ts.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { installCleanup, killAllNow, onCleanup, stopChild } from './children.ts';
import { measureOpenLoop, measureWrk, type Settings, waitForQuiet } from './measure.ts';
import { clockTicksPerSecond } from './proc.ts';
import {
  formatNoise,
  formatOpenLoopDetail,
  formatRatios,
  formatTable,
  formatWrkDetail,
  NOISY_OTHER_CPU_PERCENT,
  ratios,
  type TargetReport,
} from './report.ts';
import {
  directTarget,
  findBinary,
  startHaproxy,
  startNginx,
  startUpstream,
  startWeft,
  type Target,
  type TargetName,
  type Upstream,
  versionOf,
} from './targets.ts';

const HERE = import.meta.dirname;
const PROXIES: readonly TargetName[] = ['weft', 'nginx', 'haproxy'];

function envNumber(name: string, fallback: number, zeroAllowed = false): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || (value === 0 && !zeroAllowed)) {
    throw new Error(`${name} must be a ${zeroAllowed ? 'non-negative' : 'positive'} number, got "${raw}"`);
  }
  return value;
}

function log(message: string): void {
  process.stderr.write(`bench: ${message}\n`);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

interface Binaries {
  nginx: string | undefined;
  haproxy: string | undefined;
  wrk: string | undefined;
}

function locateBinaries(): Binaries {
  return { nginx: findBinary('nginx'), haproxy: findBinary('haproxy'), wrk: findBinary('wrk') };
}

/** Runs install.sh only when something is missing, then looks again. */
function ensureBinaries(): Binaries {
  const found = locateBinaries();
  if (found.nginx && found.haproxy && found.wrk) return found;
  log('nginx, haproxy or wrk missing: running test/bench/install.sh');
  const install = spawnSync('bash', [join(HERE, 'install.sh')], { stdio: 'inherit' });
  if (install.status !== 0)
    log(`install.sh exited ${install.status ?? install.signal}; missing targets are skipped`);
  return locateBinaries();
}

async function startTarget(
  name: TargetName,
  upstream: Upstream,
  workDir: string,
  bins: Binaries,
): Promise<Target> {
  switch (name) {
    case 'direct':
      return directTarget(upstream);
    case 'weft':
      return startWeft(workDir, upstream.port);
    case 'nginx':
      if (!bins.nginx) throw new Error('nginx not installed (see test/bench/install.sh)');
      return startNginx(bins.nginx, workDir, upstream.port);
    case 'haproxy':
      if (!bins.haproxy) throw new Error('haproxy not installed (see test/bench/install.sh)');
      return startHaproxy(bins.haproxy, workDir, upstream.port);
  }
}

async function benchTarget(
  name: TargetName,
  upstream: Upstream,
  workDir: string,
  bins: Binaries,
  settings: Settings,
): Promise<TargetReport> {
  let target: Target;
  try {
    target = await startTarget(name, upstream, workDir, bins);
  } catch (err) {
    log(`${name}: unavailable: ${errorText(err)}`);
    return {
      name,
      status: 'unavailable',
      reason: errorText(err),
      version: null,
      workers: null,
      wrk: null,
      wrkError: null,
      openLoop: null,
      openLoopError: null,
    };
  }
  try {
    log(`${name}: ${target.url} (pid ${target.pid}, ${target.version})`);
    const settle = async (phase: string): Promise<void> => {
      if (settings.quietWaitS <= 0) return;
      const other = await waitForQuiet(
        [target.pid, upstream.pid],
        settings.quietWaitS,
        NOISY_OTHER_CPU_PERCENT,
      );
      if (other >= NOISY_OTHER_CPU_PERCENT) {
        log(
          `${name}: background load still ${other.toFixed(0)}% of a core before ${phase}; measuring anyway`,
        );
      }
    };
    let wrk: TargetReport['wrk'] = null;
    let wrkError: string | null = null;
    if (bins.wrk) {
      await settle('wrk');
      log(
        `${name}: wrk -t${settings.wrk.threads} -c${settings.wrk.connections} -d${settings.wrk.durationS}s`,
      );
      try {
        wrk = await measureWrk(bins.wrk, target, upstream.pid, settings);
      } catch (err) {
        wrkError = errorText(err);
      }
    } else {
      wrkError = 'wrk not installed';
    }
    await settle('the open loop');
    log(
      `${name}: open loop ${settings.rate} req/s for ${settings.durationS} s (+${settings.warmupS} s warm-up)`,
    );
    let openLoop: TargetReport['openLoop'] = null;
    let openLoopError: string | null = null;
    try {
      openLoop = await measureOpenLoop(target, upstream.pid, settings);
    } catch (err) {
      openLoopError = errorText(err);
    }
    return {
      name,
      status: 'ok',
      reason: null,
      version: target.version,
      workers: target.workers,
      wrk,
      wrkError,
      openLoop,
      openLoopError,
    };
  } finally {
    await target.stop();
  }
}

async function main(): Promise<void> {
  installCleanup();
  const durationS = envNumber('BENCH_DURATION_S', 10);
  const settings: Settings = {
    durationS,
    warmupS: envNumber('BENCH_WARMUP_S', 1),
    rate: envNumber('BENCH_RATE', 2000),
    wrk: { threads: 1, connections: 50, durationS },
    openLoopConnections: 50,
    quietWaitS: envNumber('BENCH_QUIET_WAIT_S', 10, true),
  };
  const wanted = (process.env.BENCH_TARGETS ?? PROXIES.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  for (const name of wanted) {
    if (!PROXIES.includes(name as TargetName)) throw new Error(`BENCH_TARGETS: unknown target "${name}"`);
  }
  const targets: TargetName[] = ['direct', ...PROXIES.filter((p) => wanted.includes(p))];

  const bins = ensureBinaries();
  const workDir = mkdtempSync(join(tmpdir(), 'weft-bench-'));
  onCleanup(() => rmSync(workDir, { recursive: true, force: true }));

  const started = new Date();
  const upstream = await startUpstream();
  log(`upstream: http://127.0.0.1:${upstream.port}/ (pid ${upstream.pid}), 1 KiB body, keep-alive`);

  const reports: TargetReport[] = [];
  for (const name of targets) reports.push(await benchTarget(name, upstream, workDir, bins, settings));
  await stopChild(upstream.started);

  const byName = (name: TargetName): TargetReport | undefined => reports.find((r) => r.name === name);
  const weft = byName('weft');
  const missingFor = (other: TargetName): string | null => {
    for (const r of [weft, byName(other)]) {
      if (!r) return 'not run';
      if (r.status !== 'ok') return `${r.name} unavailable`;
    }
    return null;
  };
  const machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    kernel: release(),
    loadavgAtStart: loadavg(),
    clockTicksPerSecond: clockTicksPerSecond(),
  };
  const versions = {
    node: process.version,
    nginx: bins.nginx ? versionOf(bins.nginx, ['-v']) : null,
    haproxy: bins.haproxy ? versionOf(bins.haproxy, ['-v']) : null,
    wrk: bins.wrk ? versionOf(bins.wrk, ['-v']) : null,
  };

  const table = formatTable(reports);
  const ratioLines = [
    formatRatios('weft/nginx', ratios(weft, byName('nginx')), missingFor('nginx')),
    formatRatios('weft/haproxy', ratios(weft, byName('haproxy')), missingFor('haproxy')),
  ];
  const noise = formatNoise(reports);
  const out = [
    '',
    `Weft benchmark — ${started.toISOString()} — ${machine.cpus} CPU(s), ${machine.cpuModel}, Linux ${machine.kernel}`,
    `wrk -t${settings.wrk.threads} -c${settings.wrk.connections} -d${durationS}s (closed loop); open loop ` +
      `${settings.rate} req/s for ${durationS} s after ${settings.warmupS} s warm-up, latency from scheduled send.`,
    'Single worker each: weft = one Node process, nginx = master_process off, haproxy = nbthread 1; ' +
      'upstream = one Node process; all on loopback, load generators on the same cores.',
    'CPU ms/1k req and RSS are the target process (for direct: the upstream) during the open-loop run; ' +
      'errors = open-loop non-2xx + transport errors.',
    '',
    table,
    '',
    ...ratioLines,
    '',
    'Open-loop detail. Latency in ms, 2xx only, from scheduled send time. send lag = how late the generator',
    'itself sent; upstream/gen(erator) CPU in ms per 1k req; other CPU = busy time of processes not under',
    'test, % of a core.',
    formatOpenLoopDetail(reports),
    '',
    'wrk detail (closed loop; latency in ms; CPU in % of one core over the run):',
    formatWrkDetail(reports),
    ...(noise ? ['', noise] : []),
    '',
  ].join('\n');
  process.stdout.write(out);

  const resultsDir = join(HERE, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const json = `${JSON.stringify(
    {
      startedAt: started.toISOString(),
      finishedAt: new Date().toISOString(),
      machine,
      versions,
      settings,
      targets: reports,
      ratios: {
        toDirect: Object.fromEntries(reports.map((r) => [r.name, ratios(r, byName('direct'))])),
        weftToNginx: ratios(weft, byName('nginx')),
        weftToHaproxy: ratios(weft, byName('haproxy')),
      },
    },
    null,
    2,
  )}\n`;
  const file = join(resultsDir, `${started.toISOString().replaceAll(':', '-')}.json`);
  writeFileSync(file, json);
  writeFileSync(join(resultsDir, 'latest.json'), json);
  process.stdout.write(`results: ${file}\n         ${join(resultsDir, 'latest.json')}\n`);
}

main().then(
  () => {
    killAllNow();
    process.exit(0);
  },
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    killAllNow();
    process.exit(1);
  },
);
