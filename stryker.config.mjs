// StrykerJS for `make mutation` (scripts/mutation.mjs chooses the files to mutate with
// --mutate and their test files through STRYKER_TESTS). The TypeScript sources are mutated,
// built once into the sandbox's dist/ (every mutant switched at run time), and the compiled
// node:test files run under the TAP runner, one process per test file. Coverage is recorded
// per test file, so each mutant runs only the files that reach it.
const tests = (process.env.STRYKER_TESTS ?? '').split(',').filter(Boolean);

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'tap',
  plugins: ['@stryker-mutator/tap-runner'],
  tap: { testFiles: tests.length ? tests : ['dist/test/unit/*.test.js'] },
  buildCommand: 'npx tsc -p tsconfig.json',
  coverageAnalysis: 'perTest',
  // The CI machine has 2 cores, shared with whatever else runs.
  concurrency: 1,
  timeoutMS: 10_000,
  reporters: ['json', 'progress', 'clear-text'],
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  clearTextReporter: { allowColor: false, logTests: false, reportMutants: false, reportScoreTable: true },
  tempDirName: '.stryker-tmp',
  // Not needed to build or run the unit tests: kept out of the sandbox copy.
  // biome.json too: a second root configuration under .stryker-tmp stops `biome ci` while a run is on.
  ignorePatterns: ['dist', 'media', 'bench', 'docs', 'models/fghv', 'reports', '.state', 'systemd', 'biome.json'],
};
