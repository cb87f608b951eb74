/**
 * deploy/prometheus is valid for the Prometheus the tests install (Debian's `prometheus`, see
 * scripts/ensure-test-deps.sh): `promtool check config` on the local config (which pulls in the
 * recording rules) and `promtool check rules`; the Kubernetes config is checked with its
 * `kubernetes_sd_configs` swapped for file SD, because Debian builds Prometheus without
 * Kubernetes discovery (the relabel rules, regexes and the rest are still checked). The local
 * config's static targets are the `npm start` demo's admin ports and monitoring port.
 */
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';

const run = promisify(execFile);
const DIR = fileURLToPath(new URL('../../deploy/prometheus/', import.meta.url));
const DEMO = fileURLToPath(new URL('../../deploy/examples/demo.ts', import.meta.url));
const temps: string[] = [];

afterAll(async () => {
  for (const dir of temps) await rm(dir, { recursive: true, force: true });
});

async function promtool(...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run('promtool', args);
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

interface ScrapeConfig {
  job_name: string;
  static_configs?: { targets: string[] }[];
  kubernetes_sd_configs?: unknown;
  file_sd_configs?: unknown;
}

describe('deploy/prometheus', () => {
  it('prometheus.yml passes promtool check config, with its recording rules', async () => {
    const res = await promtool('check', 'config', join(DIR, 'prometheus.yml'));
    expect(res.out).toMatch(/SUCCESS: .*prometheus\.yml is valid/);
    expect(res.out).toMatch(/SUCCESS: 8 rules found/);
    expect(res.code, res.out).toBe(0);
  });

  it('the recording rules pass promtool check rules', async () => {
    const res = await promtool('check', 'rules', join(DIR, 'rules', 'weft-service-graph.yml'));
    expect(res.code, res.out).toBe(0);
    expect(res.out).toMatch(/SUCCESS: 8 rules found/);
  });

  it('prometheus-kubernetes.yml passes promtool check config with file SD in place of Kubernetes SD', async () => {
    const config = parse(await readFile(join(DIR, 'prometheus-kubernetes.yml'), 'utf8')) as {
      scrape_configs: ScrapeConfig[];
    };
    const jobs = config.scrape_configs.map((j) => j.job_name);
    expect(jobs).toEqual(['weft-kubernetes-control-plane', 'weft-kubernetes-proxies']);
    for (const job of config.scrape_configs) {
      expect(job.kubernetes_sd_configs, job.job_name).toBeDefined();
      delete job.kubernetes_sd_configs;
      job.file_sd_configs = [{ files: ['targets.json'] }];
    }
    const dir = await mkdtemp(join(tmpdir(), 'weft-promtool-'));
    temps.push(dir);
    await cp(join(DIR, 'rules'), join(dir, 'rules'), { recursive: true });
    await writeFile(join(dir, 'prometheus.yml'), stringify(config));
    const res = await promtool('check', 'config', join(dir, 'prometheus.yml'));
    expect(res.code, res.out).toBe(0);
  });

  it("scrapes the npm start demo: the control plane's monitoring port and every sidecar's admin port", async () => {
    const config = parse(await readFile(join(DIR, 'prometheus.yml'), 'utf8')) as {
      scrape_configs: ScrapeConfig[];
    };
    const targets = config.scrape_configs.flatMap((j) => (j.static_configs ?? []).flatMap((s) => s.targets));
    const demo = await readFile(DEMO, 'utf8');
    const adminPorts = [...demo.matchAll(/\bbase: (\d+)/g)].map((m) => `127.0.0.1:${m[1]}`);
    expect(adminPorts.length).toBeGreaterThanOrEqual(5);
    expect(demo).toContain('127.0.0.1:15014/ready');
    expect(targets.sort()).toEqual([...adminPorts, '127.0.0.1:15014'].sort());
  });
});
