/**
 * The admin API's public surface: `startAdminApi`, the token file, and the wire types the CLI
 * shares with the server.
 */
export { type AdminApi, type AdminApiOptions, startAdminApi } from './server.ts';
export { loadOrCreateToken, readToken, TOKEN_FILE } from './tokenFile.ts';
export type * from './types.ts';
