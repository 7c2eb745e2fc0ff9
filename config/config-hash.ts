/**
 * The hash a fleet compares between devices: the configuration and the threshold overrides
 * in force (an override changes what the device accepts as much as the file does). Used by
 * the commands (get_config, reload_config), the daemon's info and the drill's record.
 */
import { createHash } from 'node:crypto';
import type { Config } from './schema.js';

export function configHash(config: Config, overrides: Record<string, number> = {}): string {
  const h = createHash('sha256').update(JSON.stringify(config));
  if (Object.keys(overrides).length) h.update(JSON.stringify({ threshold_overrides: overrides }));
  return h.digest('hex').slice(0, 16);
}
