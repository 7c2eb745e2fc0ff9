import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A fresh directory under the system temp dir, named fghv-<tag>-XXXXXX. */
export function tempDir(tag = 'test'): string {
  return mkdtempSync(path.join(os.tmpdir(), `fghv-${tag}-`));
}
