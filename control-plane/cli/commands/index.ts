/**
 * Registers the admin verbs on the `weft` program: apply, get, delete, diff, validate,
 * proxy-status, proxy-config, token, ca, apikey (offline) and graph. Every verb exits 0 on success, 1 on failure (invalid input,
 * server error, differences for diff, NACK or incomplete rollout for apply --wait), 2 on bad usage.
 */
import type { Command } from 'commander';
import { registerApiKey } from './apikey.ts';
import { registerApply } from './apply.ts';
import { registerCa } from './ca.ts';
import { registerDelete } from './delete.ts';
import { registerDiff } from './diff.ts';
import { registerGet } from './get.ts';
import { registerGraph } from './graph.ts';
import { registerInject } from './inject.ts';
import { registerProxyConfig } from './proxy-config.ts';
import { registerProxyStatus } from './proxy-status.ts';
import { registerRunApp } from './run-app.ts';
import { registerToken } from './token.ts';
import { registerValidate } from './validate.ts';

export function registerAdminCommands(program: Command): void {
  registerApply(program);
  registerGet(program);
  registerDelete(program);
  registerDiff(program);
  registerValidate(program);
  registerProxyStatus(program);
  registerProxyConfig(program);
  registerToken(program);
  registerCa(program);
  registerApiKey(program);
  registerGraph(program);
  registerInject(program);
  registerRunApp(program);
}
