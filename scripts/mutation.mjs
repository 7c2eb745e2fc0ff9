#!/usr/bin/env node
// `make mutation`: StrykerJS (stryker.config.mjs, TAP runner over node --test files) on the
// decision and trust core, each core file with the unit tests that exercise it, then
// bench/mutation.md: per file, the mutation score over the non-equivalent mutants and every
// surviving mutant with why it is equivalent (scripts/mutation-equivalent.json) or marked
// "not killed".
//
//   node scripts/mutation.mjs              every target below (one Stryker run, one build)
//   node scripts/mutation.mjs fusion keys  only targets whose file path contains one of these
//   node scripts/mutation.mjs --report     re-render bench/mutation.md from bench/mutation.json
//
// A run updates the rows of the files it mutated in bench/mutation.json (each row keeps the
// date, commit and machine of its own run) and renders the whole report. Stryker runs with
// concurrency 1 (the CI machine has 2 cores) and runs, for each mutant, only the test files
// that cover it (the TAP runner measures coverage per test file). Exits 1 when a file's score
// is below GOAL.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
/** Lowest acceptable score (%) of non-equivalent mutants killed, per core file. */
const GOAL = 85;

/** Core file -> the unit tests (dist/test/unit/<name>.test.js) that exercise it. */
const TARGETS = [
  { file: 'daemon/decision/fusion.ts', tests: ['decision-fusion', 'decision-guidance'] },
  { file: 'daemon/liveness/verdict.ts', tests: ['verdict'] },
  { file: 'daemon/contract/signing/verify.ts', tests: ['signing-decisions'] },
  { file: 'daemon/contract/signing/canonical-json.ts', tests: ['signing-decisions', 'commands-request'] },
  {
    file: 'daemon/contract/signing/strict-json.ts',
    tests: ['strict-json', 'signing-decisions', 'commands-request'],
  },
  { file: 'daemon/contract/signing/keys.ts', tests: ['signing-keys', 'signing-decisions'] },
  { file: 'daemon/contract/commands/request.ts', tests: ['commands-request'] },
  // The command table (schemas, which commands mutate): issue 26 moved them out of request.ts.
  { file: 'daemon/contract/commands/registry.ts', tests: ['commands-request', 'command-registry'] },
  { file: 'daemon/liveness/thresholds-store.ts', tests: ['thresholds-store', 'commands-request'] },
  { file: 'daemon/models/model-install.ts', tests: ['model-install-store', 'model-install-checks'] },
  { file: 'daemon/drill/stats.ts', tests: ['drill-stats'] },
];

const args = process.argv.slice(2);
const reportOnly = args.includes('--report');
const filters = args.filter((a) => !a.startsWith('--'));
const targets = filters.length ? TARGETS.filter((t) => filters.some((f) => t.file.includes(f))) : TARGETS;
if (!targets.length) {
  console.error(
    `no target matches ${filters.join(', ')} (targets: ${TARGETS.map((t) => t.file).join(', ')})`,
  );
  process.exit(2);
}

const resultsFile = path.join(root, 'bench/mutation.json');
const results = existsSync(resultsFile) ? JSON.parse(readFileSync(resultsFile, 'utf8')) : { files: {} };
const equivalentsFile = path.join(root, 'scripts/mutation-equivalent.json');
const equivalents = JSON.parse(readFileSync(equivalentsFile, 'utf8')).equivalent;

function git(...a) {
  try {
    return execFileSync('git', a, { cwd: root, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}
function machine() {
  let cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  try {
    cpu = /Model name:\s*(.+)/.exec(execFileSync('lscpu', { encoding: 'utf8' }))?.[1]?.trim() ?? cpu;
  } catch {}
  return `${cpu}, ${os.cpus().length} logical CPUs, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
}

/** The source text a mutant replaces (from the report's copy of the file). */
function original(source, loc) {
  const lines = source.split('\n');
  const { start, end } = loc;
  if (start.line === end.line) return lines[start.line - 1].slice(start.column - 1, end.column - 1);
  const first = lines[start.line - 1].slice(start.column - 1);
  const last = lines[end.line - 1].slice(0, end.column - 1);
  return [first, ...lines.slice(start.line, end.line - 1), last].join('\n');
}
const oneLine = (s, n = 90) => {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > n ? `${t.slice(0, n - 1)}…` : t;
};

function equivalentFor(file, m) {
  return equivalents.find(
    (e) =>
      e.file === file &&
      e.mutator === m.mutatorName &&
      oneLine(e.original, 10_000) === oneLine(m.original, 10_000) &&
      oneLine(e.replacement, 10_000) === oneLine(m.replacement, 10_000),
  );
}

if (!reportOnly) {
  const tests = [...new Set(targets.flatMap((t) => t.tests))].map((n) => `dist/test/unit/${n}.test.js`);
  const stryker = path.join(root, 'node_modules/.bin/stryker');
  const started = Date.now();
  const run = spawnSync(
    stryker,
    ['run', 'stryker.config.mjs', '--mutate', targets.map((t) => t.file).join(',')],
    {
      cwd: root,
      stdio: 'inherit',
      env: { ...process.env, STRYKER_TESTS: tests.join(','), OPENCV4NODEJS_DISABLE_AUTOBUILD: '1' },
    },
  );
  if (run.status !== 0) {
    console.error(`stryker exited with ${run.status}`);
    process.exit(run.status ?? 1);
  }
  const minutes = (Date.now() - started) / 60_000;
  const report = JSON.parse(readFileSync(path.join(root, 'reports/mutation/mutation.json'), 'utf8'));
  const meta = {
    date: new Date().toISOString().slice(0, 16).replace('T', ' '),
    commit:
      git('rev-parse', '--short', 'HEAD') +
      (git('status', '--porcelain', '--', ...targets.map((t) => t.file)) ? '+changes' : ''),
    machine: machine(),
    minutes_for_the_run: Math.round(minutes * 10) / 10,
    files_in_the_run: targets.length,
  };
  for (const t of targets) {
    const f = report.files[t.file];
    if (!f) {
      console.error(`no mutants reported for ${t.file}`);
      process.exit(1);
    }
    const mutants = f.mutants.map((m) => ({
      line: m.location.start.line,
      mutatorName: m.mutatorName,
      original: original(f.source, m.location),
      replacement: m.replacement ?? '',
      status: m.status,
    }));
    const count = (s) => mutants.filter((m) => m.status === s).length;
    const notKilled = mutants.filter((m) => m.status === 'Survived' || m.status === 'NoCoverage');
    results.files[t.file] = {
      ...meta,
      tests: t.tests,
      mutants: mutants.length,
      killed: count('Killed'),
      timeout: count('Timeout'),
      survived: count('Survived'),
      no_coverage: count('NoCoverage'),
      invalid: count('CompileError') + count('RuntimeError'),
      ignored: count('Ignored'),
      not_killed: notKilled,
    };
  }
  writeFileSync(resultsFile, `${JSON.stringify(results, null, 2)}\n`);
  // In the project's JSON style, so that `biome ci` passes on the committed file.
  spawnSync(path.join(root, 'node_modules/.bin/biome'), ['format', '--write', resultsFile], { cwd: root });
}

// Render bench/mutation.md from every file's latest row.
const rows = [];
const details = [];
const belowGoal = [];
for (const t of TARGETS) {
  const r = results.files[t.file];
  if (!r) {
    rows.push(`| ${t.file} | not run yet | | | | | | |`);
    continue;
  }
  const classified = r.not_killed.map((m) => ({ ...m, eq: equivalentFor(t.file, m) }));
  const eq = classified.filter((m) => m.eq).length;
  const killed = r.killed + r.timeout;
  const valid = killed + r.survived + r.no_coverage;
  const score = valid - eq > 0 ? (100 * killed) / (valid - eq) : 100;
  const raw = valid > 0 ? (100 * killed) / valid : 100;
  if (score < GOAL) belowGoal.push(`${t.file} ${score.toFixed(1)} %`);
  rows.push(
    `| ${t.file} | ${r.mutants} | ${killed} | ${r.survived} | ${r.no_coverage} | ${eq} | ${raw.toFixed(1)} | **${score.toFixed(1)}** | ${r.date} UTC, ${r.commit} |`,
  );
  if (classified.length) {
    details.push(`### ${t.file}\n`);
    details.push(`Tests: ${r.tests.map((n) => `test/unit/${n}.test.ts`).join(', ')}.\n`);
    for (const m of classified.sort((a, b) => a.line - b.line)) {
      const what = `line ${m.line}, ${m.mutatorName}: \`${oneLine(m.original, 70)}\` -> \`${oneLine(m.replacement, 70)}\``;
      details.push(
        m.eq
          ? `- ${what}. Equivalent: ${m.eq.why}`
          : `- ${what}. **Not killed** (${m.status === 'NoCoverage' ? 'no test runs this code' : 'survived'}).`,
      );
    }
    details.push('');
  }
}
const machines = [...new Set(Object.values(results.files).map((r) => r.machine))];
const md = `# Mutation testing: the decision and trust core

Written by \`make mutation\` (scripts/mutation.mjs, StrykerJS ${strykerVersion()} with its TAP runner
over the compiled \`node --test\` files; configuration in stryker.config.mjs). Each core file is
mutated in its TypeScript source and, for each mutant, only the test files that cover it are run.
Score = killed (timeouts included) / (killed + survived + no coverage - equivalent), in %; the
goal is at least ${GOAL} % on every file. "raw" counts the equivalent mutants as survivors.
Equivalent mutants are listed with the reason in scripts/mutation-equivalent.json.

Machine: ${machines.join('; ') || 'n/a'}.

| file | mutants | killed | survived | no coverage | equivalent | raw % | score % | run |
|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}

Python (calibration, metrics): no mutation tool is installed for it here; its tests check
hand-computed values instead (models/fghv/tests/test_metrics.py, test_calibrate_target.py).

## Mutants not killed

${details.join('\n') || 'None.\n'}`;
writeFileSync(path.join(root, 'bench/mutation.md'), md);
console.log(
  `bench/mutation.md written (${Object.keys(results.files).length} of ${TARGETS.length} files measured)`,
);
if (belowGoal.length) {
  console.error(`below the goal of ${GOAL} %: ${belowGoal.join(', ')}`);
  process.exit(1);
}

function strykerVersion() {
  try {
    return JSON.parse(
      readFileSync(path.join(root, 'node_modules/@stryker-mutator/core/package.json'), 'utf8'),
    ).version;
  } catch {
    return '(not installed)';
  }
}
