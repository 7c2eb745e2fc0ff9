#!/usr/bin/env node
// The import check run by `make test`: every relative import in core/, config/, drivers/ and
// daemon/ (type-only ones too) must point to the same floor or a lower one, and no file may
// reach itself through its imports. The floors, lowest first, are written here and nowhere
// else; docs/architecture.md explains them. A few folders are held to less than their floor
// allows (ONLY, NEVER). Tests sit above every floor and are not checked.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

/** Lowest first. A file belongs to the longest folder prefix listed; folders on one floor may import each other. */
export const FLOORS = [
  ['core'],
  ['config'],
  ['drivers'],
  ['daemon/inference', 'daemon/supervision'],
  ['daemon/detect'],
  ['daemon/align'],
  ['daemon/liveness', 'daemon/decision'],
  ['daemon/models'],
  ['daemon/mqtt'],
  ['daemon/contract'],
  ['daemon/telemetry'],
  ['daemon/pipeline'],
  ['daemon/drill'],
  ['daemon/status'],
  ['daemon/*'],
  ['daemon/cli'],
];
const SCANNED = ['core', 'config', 'drivers', 'daemon'];

/**
 * Folders that may import only the folders listed (and themselves), whatever their floor
 * allows. The MQTT transport moves opaque messages: it knows nothing of the contract
 * (daemon/contract/: topics, payloads, signing, audit) nor of anything else of the daemon.
 */
export const ONLY = {
  'daemon/mqtt': ['core', 'config'],
};

/**
 * Folders that may not import the folders listed, whatever their floor allows. The offline
 * drill reaches the thresholds through their owner (daemon/liveness/thresholds-store.ts), not
 * through the commands' adapters.
 */
export const NEVER = {
  'daemon/drill': ['daemon/contract/commands'],
};

const inFolder = (rel, folder) => rel === folder || rel.startsWith(`${folder}/`);

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

function floorOf(rel) {
  let best = null;
  FLOORS.forEach((folders, level) => {
    for (const f of folders) {
      // 'daemon/*' holds the files directly in daemon/ only; any other entry holds its whole folder.
      const hit = f.endsWith('/*')
        ? path.dirname(rel) === f.slice(0, -2)
        : rel === f || rel.startsWith(`${f}/`);
      if (hit && (best === null || f.length > best.folder.length)) best = { folder: f, level };
    }
  });
  return best;
}

const SPEC = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g;

export function importGraph() {
  const graph = new Map();
  for (const top of SCANNED) {
    for (const file of walk(path.join(root, top))) {
      const rel = path.relative(root, file);
      const src = readFileSync(file, 'utf8');
      const deps = new Set();
      for (const m of src.matchAll(SPEC)) {
        const target = path.relative(root, path.resolve(path.dirname(file), m[1])).replace(/\.js$/, '.ts');
        deps.add(target);
      }
      graph.set(rel, deps);
    }
  }
  return graph;
}

export function problems(graph) {
  const out = [];
  for (const [file, deps] of graph) {
    const from = floorOf(file);
    if (!from) {
      out.push(`${file}: on no floor (add its folder to FLOORS in scripts/check-imports.mjs)`);
      continue;
    }
    for (const dep of deps) {
      if (!SCANNED.some((t) => dep.startsWith(`${t}/`))) {
        out.push(`${file} imports ${dep}, outside ${SCANNED.join(', ')}`);
        continue;
      }
      const to = floorOf(dep);
      if (to && to.level > from.level)
        out.push(`${file} (floor ${from.folder}) imports ${dep} (higher floor ${to.folder})`);
      for (const [folder, allowed] of Object.entries(ONLY)) {
        if (!inFolder(file, folder) || [folder, ...allowed].some((a) => inFolder(dep, a))) continue;
        out.push(`${file} imports ${dep}: ${folder}/ may import only ${allowed.join(', ')} and itself`);
      }
      for (const [folder, banned] of Object.entries(NEVER)) {
        if (!inFolder(file, folder)) continue;
        for (const b of banned)
          if (inFolder(dep, b)) out.push(`${file} imports ${dep}: ${folder}/ may not import ${b}`);
      }
    }
  }
  // Circles: depth-first search over files.
  const state = new Map();
  const stack = [];
  const seen = new Set();
  const visit = (f) => {
    state.set(f, 1);
    stack.push(f);
    for (const d of graph.get(f) ?? []) {
      if (!graph.has(d)) continue;
      if (state.get(d) === 1) {
        const cycle = [...stack.slice(stack.indexOf(d)), d].join(' -> ');
        if (!seen.has(cycle)) out.push(`import circle: ${cycle}`);
        seen.add(cycle);
      } else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(f, 2);
  };
  for (const f of [...graph.keys()].sort()) if (!state.has(f)) visit(f);
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const graph = importGraph();
  const found = problems(graph);
  if (found.length) {
    console.error(`import check: ${found.length} problem(s)\n  ${found.join('\n  ')}`);
    process.exit(1);
  }
  let edges = 0;
  for (const d of graph.values()) edges += d.size;
  console.log(
    `import check: ${graph.size} files, ${edges} imports, every one on its floor or below, no circles`,
  );
}
