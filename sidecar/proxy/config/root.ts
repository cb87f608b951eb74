/**
 * Finds files that ship beside the code (`proto/`, `package.json`) whether the code runs from
 * its TypeScript sources or from the compiled `dist/` tree: walks up from this module to the
 * first folder holding `proto/weft/v1/config.proto`.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The project's root folder. Throws when no ancestor holds the proto files. */
export function projectRoot(): string {
  if (root !== undefined) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'proto', 'weft', 'v1', 'config.proto'))) {
      root = dir;
      return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find proto/weft/v1/config.proto above the weft sources');
    dir = parent;
  }
}
