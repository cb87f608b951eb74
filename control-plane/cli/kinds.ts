/**
 * Kind names on the command line: case-insensitive, singular or plural (`httproute`,
 * `HTTPRoutes`, `backendtrafficpolicies`), resolved to the canonical `Kind`.
 */
import { KINDS, type Kind } from '../resources/types.ts';
import { CliError, EXIT } from './errors.ts';

function plural(lower: string): string {
  if (lower.endsWith('y')) return `${lower.slice(0, -1)}ies`;
  if (lower.endsWith('s')) return `${lower}es`;
  return `${lower}s`;
}

const BY_NAME = new Map<string, Kind>();
for (const kind of Object.keys(KINDS) as Kind[]) {
  const lower = kind.toLowerCase();
  BY_NAME.set(lower, kind);
  BY_NAME.set(plural(lower), kind);
}

/** The canonical kind for `name`; throws a usage `CliError` listing the kinds when unknown. */
export function resolveKind(name: string): Kind {
  const kind = BY_NAME.get(name.toLowerCase());
  if (!kind) {
    throw new CliError(`unknown kind "${name}"; one of: ${Object.keys(KINDS).join(', ')}`, EXIT.usage);
  }
  return kind;
}
