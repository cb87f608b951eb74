/**
 * `ConfigError`: a rejected configuration. Each problem names the resource, the field and the
 * reason, e.g. `Listener outbound: routeConfigName: no RouteConfiguration named "missing"`.
 * A proxy that gets one keeps serving its last good config.
 */
export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[], source = 'config') {
    super(`invalid ${source}:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}
