/**
 * The import check of `make test` (scripts/check-imports.mjs): the tree as it is passes, and
 * each rule fails on a graph that breaks it (an upward import, the transport reaching into
 * the contract, a circle).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '../helpers/paths.js';

type Graph = Map<string, Set<string>>;
const check: { importGraph(): Graph; problems(graph: Graph): string[] } = await import(
  pathToFileURL(path.join(repoRoot, 'scripts/check-imports.mjs')).href
);

const graph = (edges: Record<string, string[]>): Graph =>
  new Map(Object.entries(edges).map(([file, deps]) => [file, new Set(deps)]));

test('the tree as it is: every import on its floor or below, no circles', () => {
  assert.deepEqual(check.problems(check.importGraph()), []);
});

test('an import of a higher floor fails', () => {
  const found = check.problems(
    graph({ 'drivers/camera/x.ts': ['daemon/errors.ts'], 'daemon/errors.ts': [] }),
  );
  assert.equal(found.length, 1);
  assert.match(found[0] ?? '', /drivers\/camera\/x\.ts \(floor drivers\) imports daemon\/errors\.ts/);
});

test('the MQTT transport may import nothing of the contract, nor other daemon folders below it', () => {
  const found = check.problems(
    graph({
      'daemon/mqtt/mqtt-link.ts': ['daemon/contract/topics.ts', 'daemon/decision/types.ts', 'core/errors.ts'],
      'daemon/contract/topics.ts': ['daemon/mqtt/mqtt-link.ts'],
      'daemon/decision/types.ts': [],
      'core/errors.ts': [],
    }),
  );
  assert.ok(found.some((p) => /mqtt-link\.ts .*imports daemon\/contract\/topics\.ts \(higher floor/.test(p)));
  assert.ok(
    found.some((p) => /imports daemon\/contract\/topics\.ts: daemon\/mqtt\/ may import only/.test(p)),
  );
  assert.ok(found.some((p) => /imports daemon\/decision\/types\.ts: daemon\/mqtt\/ may import only/.test(p)));
  assert.ok(!found.some((p) => p.includes('core/errors.ts')), 'core stays allowed');
  assert.ok(found.some((p) => p.startsWith('import circle:')));
});

test('a circle on one floor fails', () => {
  const found = check.problems(graph({ 'core/a.ts': ['core/b.ts'], 'core/b.ts': ['core/a.ts'] }));
  assert.deepEqual(found, ['import circle: core/a.ts -> core/b.ts -> core/a.ts']);
});

test('the contract may not import telemetry (health and latency sit a floor above it)', () => {
  const found = check.problems(
    graph({
      'daemon/contract/commands/daemon-target.ts': ['daemon/telemetry/health.ts'],
      'daemon/telemetry/health.ts': ['daemon/contract/topics.ts'],
      'daemon/contract/topics.ts': [],
    }),
  );
  assert.equal(found.length, 1);
  assert.match(
    found[0] ?? '',
    /daemon-target\.ts \(floor daemon\/contract\) imports daemon\/telemetry\/health\.ts/,
  );
});

test('the drill may not import the commands (it reaches the thresholds through their owner)', () => {
  const found = check.problems(
    graph({
      'daemon/drill/apply.ts': [
        'daemon/contract/commands/daemon-target.ts',
        'daemon/contract/audit/events.ts',
        'daemon/liveness/thresholds-store.ts',
      ],
      'daemon/contract/commands/daemon-target.ts': [],
      'daemon/contract/audit/events.ts': [],
      'daemon/liveness/thresholds-store.ts': [],
    }),
  );
  assert.deepEqual(found, [
    'daemon/drill/apply.ts imports daemon/contract/commands/daemon-target.ts: daemon/drill/ may not import daemon/contract/commands',
  ]);
});
