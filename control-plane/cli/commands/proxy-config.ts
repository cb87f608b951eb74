/**
 * `weft proxy-config PROXY listeners|routes|clusters|endpoints [-o table|json|yaml]` (alias `pc`):
 * one section of the config the control plane computes for a connected proxy (`translate` of the
 * current mesh state for the proxy's identity). The table is a summary; `-o json|yaml` prints the
 * section in full.
 */
import type { Command } from 'commander';
import type { ProxyConfig } from '../../../sidecar/proxy/config/model.ts';
import { type Format, out, printData, table } from '../output.ts';
import { type ConnectionOptions, clientFor, connectionOptions, outputOption, run, usage } from './common.ts';

const SECTIONS = ['listeners', 'routes', 'clusters', 'endpoints'] as const;
type Section = (typeof SECTIONS)[number];

interface ConfigOptions extends ConnectionOptions {
  readonly output: Format;
}

/** Section name from the command line: singular or plural, any case. */
function section(name: string): Section {
  const lower = name.toLowerCase();
  const found = SECTIONS.find((s) => s === lower || s === `${lower}s`);
  if (!found) throw usage(`unknown section "${name}"; one of: ${SECTIONS.join(', ')}`);
  return found;
}

/** The summary table of one section. */
function summary(config: ProxyConfig, which: Section): string {
  switch (which) {
    case 'listeners':
      return table(
        ['NAME', 'ADDRESS', 'PORT', 'DIRECTION', 'ROUTE CONFIG'],
        config.listeners.map((l) => [
          l.name,
          l.address ?? '0.0.0.0',
          String(l.port),
          l.direction ?? '-',
          l.tcpProxy !== undefined ? `tcp → ${l.tcpProxy.cluster}` : l.routeConfigName,
        ]),
      );
    case 'routes':
      return table(
        ['ROUTE CONFIG', 'VIRTUAL HOST', 'DOMAINS', 'ROUTES'],
        config.routes.flatMap((rc) =>
          (rc.virtualHosts ?? []).map((vh) => [
            rc.name,
            vh.name ?? '-',
            (vh.domains ?? []).join(',') || '*',
            String(vh.routes?.length ?? 0),
          ]),
        ),
      );
    case 'clusters':
      return table(
        ['NAME', 'LB POLICY'],
        config.clusters.map((c) => [c.name, c.lbPolicy ?? 'ROUND_ROBIN']),
      );
    case 'endpoints':
      return table(
        ['CLUSTER', 'ENDPOINT', 'WEIGHT', 'HEALTH'],
        config.endpoints.flatMap((cla) =>
          (cla.endpoints ?? []).map((e) => [
            cla.clusterName,
            `${e.address}:${e.port}`,
            String(e.weight ?? 1),
            e.health ?? 'HEALTHY',
          ]),
        ),
      );
  }
}

export function registerProxyConfig(program: Command): void {
  const cmd = program
    .command('proxy-config')
    .alias('pc')
    .description("show one section of a proxy's computed config")
    .argument('<proxy>', 'proxy id (see weft proxy-status)')
    .argument('<section>', SECTIONS.join('|'));
  outputOption(connectionOptions(cmd)).action(
    run(async (proxyId: string, sectionName: string, opts: ConfigOptions) => {
      const which = section(sectionName);
      const snapshot = await (await clientFor(opts)).proxyConfig(proxyId);
      const config = snapshot.config;
      if (opts.output !== 'table') printData(config[which], opts.output);
      else out(summary(config, which));
    }),
  );
}
