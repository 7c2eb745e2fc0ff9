#!/usr/bin/env node
// Runs every compiled TypeScript test (dist/test/**/*.test.js) with node's test runner.
// Node 20's --test has no glob support, so the file list is built here.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const filter = process.argv.slice(2);
function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}
let files = walk(path.join(root, 'dist', 'test')).sort();
if (filter.length) files = files.filter((f) => filter.some((x) => f.includes(x)));
if (!files.length) {
  console.error('no test files found under dist/test (run `npm run build` first)');
  process.exit(1);
}
const res = spawnSync(
  process.execPath,
  ['--test', '--test-concurrency=1', '--test-reporter=spec', ...files],
  { stdio: 'inherit', cwd: root, env: { ...process.env, OPENCV4NODEJS_DISABLE_AUTOBUILD: '1' } },
);
process.exit(res.status ?? 1);
