/** Every launcher of the daemon sets the same glibc malloc environment (daemon/supervision/malloc-env.ts). */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, it } from 'node:test';
import { MALLOC_ENV } from '../../daemon/supervision/malloc-env.js';
import { repoRoot } from '../helpers/paths.js';

const read = (p: string) => readFileSync(path.join(repoRoot, p), 'utf8');

describe('glibc malloc environment', () => {
  it('the systemd unit sets each variable', () => {
    const unit = read('systemd/fghv-kiosk.service');
    for (const [k, v] of Object.entries(MALLOC_ENV))
      assert.match(unit, new RegExp(`^Environment=${k}=${v}$`, 'm'));
  });

  it('the pm2 ecosystem file sets each variable', () => {
    const eco = createRequire(import.meta.url)(path.join(repoRoot, 'ecosystem.config.cjs')) as {
      apps: { env: Record<string, string> }[];
    };
    for (const [k, v] of Object.entries(MALLOC_ENV)) assert.equal(eco.apps[0]?.env[k], v, k);
  });

  it('make run sets each variable on the daemon command line', () => {
    // The `run` target's recipe lines (a `model fetch` set-up line may come first).
    const lines = /^run: .*\n((?:\t.*\n)+)/m.exec(read('Makefile'))?.[1]?.split('\n') ?? [];
    const recipe = lines.find((l) => l.includes(' run')) ?? '';
    assert.match(recipe, /node bin\/fghv-kiosk\.js run/);
    for (const [k, v] of Object.entries(MALLOC_ENV))
      assert.ok(recipe.includes(`${k}=${v} `), `${k}=${v} in: ${recipe}`);
  });
});
