import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root, whether this file runs from test/helpers (tsx) or dist/test/helpers (compiled). */
function findRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('package.json not found above the test helpers');
    dir = up;
  }
  return dir;
}

export const repoRoot = findRoot();
export const sharedData = path.resolve(repoRoot, '../shared/data');

/**
 * For node:test's `skip` option: false when ../shared/data is present, otherwise a message
 * naming the missing path (a user's clone has no shared data).
 */
export function needsSharedData(...relative: string[]): false | string {
  for (const rel of ['', ...relative]) {
    const p = path.join(sharedData, rel);
    if (!existsSync(p)) return `needs ${p}, which is absent`;
  }
  return false;
}

export function shared(rel: string): string {
  return path.join(sharedData, rel);
}
