/**
 * The config error of the edge authentication filters: names the field, relative to the listener
 * (`authProviders.jwtProviders[0].algorithms[1]`, `auth.rules[2].clientCidrs[0]`) or the route
 * (`routes[…] auth.cors.allowOrigins[0]`), and the reason. Thrown only while compiling a config,
 * never at request time.
 */
export class EdgeAuthConfigError extends Error {
  readonly field: string;
  constructor(field: string, reason: string) {
    super(`${field}: ${reason}`);
    this.name = 'EdgeAuthConfigError';
    this.field = field;
  }
}
