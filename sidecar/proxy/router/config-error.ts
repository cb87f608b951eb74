/**
 * The one error the router compiler throws: a RouteConfiguration the proxy cannot honour.
 *
 * Invariant: every invalid input is rejected while compiling (so the config is NACKed and the
 * last good table stays in place), never while serving a request. The message names the route
 * configuration, the virtual host, the route and the field, e.g.
 * `route config "outbound": virtual host "reviews", route "default/reviews/rule-0": matches[0].path.value: …`.
 */

/** Where in a RouteConfiguration a value sits. `undefined` parts are left out of the message. */
export interface ConfigLocation {
  readonly routeConfig: string;
  readonly virtualHost: string | undefined;
  readonly route: string | undefined;
}

/** A RouteConfiguration value the router cannot compile. */
export class RouteConfigError extends Error {
  readonly routeConfig: string;
  readonly virtualHost: string | undefined;
  readonly route: string | undefined;
  /** Field path relative to the route (or virtual host), e.g. `matches[0].headers[1].value`. */
  readonly field: string;

  constructor(where: ConfigLocation, field: string, reason: string) {
    let scope = `route config "${where.routeConfig}"`;
    if (where.virtualHost !== undefined) scope += `: virtual host "${where.virtualHost}"`;
    if (where.route !== undefined) scope += `, route "${where.route}"`;
    super(`${scope}: ${field}: ${reason}`);
    this.name = 'RouteConfigError';
    this.routeConfig = where.routeConfig;
    this.virtualHost = where.virtualHost;
    this.route = where.route;
    this.field = field;
  }
}

/**
 * Throws a `RouteConfigError` for `field` at `where`.
 * @throws RouteConfigError always.
 */
export function invalid(where: ConfigLocation, field: string, reason: string): never {
  throw new RouteConfigError(where, field, reason);
}

/**
 * Compiles `source` as a regular expression that must match a whole value (`^(?:source)$`).
 * The source is compiled on its own first, so a value such as `a)|(b` cannot escape the anchors.
 * @throws RouteConfigError when `source` is empty or not a valid ECMAScript regular expression.
 */
export function compileAnchoredRegex(source: string, where: ConfigLocation, field: string): RegExp {
  if (source.length === 0) invalid(where, field, 'a regular expression must not be empty');
  try {
    new RegExp(source);
    return new RegExp(`^(?:${source})$`);
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    return invalid(where, field, `invalid regular expression ${JSON.stringify(source)}: ${detail}`);
  }
}
