/**
 * `weft inject -f FILE|DIR|- [--image IMG] [--control-plane ADDR] [--ca-bundle-configmap NAME]`:
 * rewrites Kubernetes manifests with the Weft sidecar (control-plane/inject/manifests.ts) and
 * writes them to stdout; one line per object on stderr says what was done (`injected`,
 * `already-injected`, `disabled`, `passed-through`). Exit 0, or 1 when a manifest cannot be
 * injected (each problem names the resource, field and reason) — nothing is written then.
 *
 *   weft inject -f deploy.yaml | kubectl apply -f -
 */
import type { Command } from 'commander';
import { DEFAULT_INJECTOR_CONFIG, InjectionError } from '../../inject/config.ts';
import { injectManifests } from '../../inject/manifests.ts';
import { CliError } from '../errors.ts';
import { readSources } from '../inputs.ts';
import { collect, run, usage } from './common.ts';

interface InjectFlags {
  filename?: string[];
  image: string;
  controlPlane: string;
  caBundleConfigmap: string;
  quiet?: boolean;
}

export function registerInject(program: Command): void {
  program
    .command('inject')
    .description(
      'add the Weft sidecar to Kubernetes manifests (stdout); see README "Add Weft to a Kubernetes cluster"',
    )
    .option('-f, --filename <path>', 'file, directory or - for stdin; repeatable', collect)
    .option('--image <image>', 'the weft image the sidecar runs', DEFAULT_INJECTOR_CONFIG.image)
    .option(
      '--control-plane <host:port>',
      'discovery address sidecars dial',
      DEFAULT_INJECTOR_CONFIG.controlPlane,
    )
    .option(
      '--ca-bundle-configmap <name>',
      'ConfigMap with the mesh trust bundle (key ca-bundle.pem)',
      DEFAULT_INJECTOR_CONFIG.caBundleConfigMap,
    )
    .option('-q, --quiet', 'no per-object report on stderr')
    .action(
      run(async (opts: InjectFlags) => {
        if (!opts.filename?.length) throw usage('inject needs -f FILE|DIR|-');
        const config = {
          ...DEFAULT_INJECTOR_CONFIG,
          image: opts.image,
          controlPlane: opts.controlPlane,
          caBundleConfigMap: opts.caBundleConfigmap,
        };
        const outputs: string[] = [];
        const lines: string[] = [];
        for (const source of await readSources(opts.filename)) {
          try {
            const { text, reports } = injectManifests(source.text, config, source.name);
            outputs.push(text);
            for (const r of reports) lines.push(`${r.resource}: ${r.result}`);
          } catch (err) {
            if (err instanceof InjectionError) throw new CliError('cannot inject', 1, [err.message]);
            throw err;
          }
        }
        process.stdout.write(outputs.map((t) => (t.endsWith('\n') ? t : `${t}\n`)).join('---\n'));
        if (!opts.quiet) process.stderr.write(lines.map((l) => `${l}\n`).join(''));
      }),
    );
}
