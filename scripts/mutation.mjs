#!/usr/bin/env node
/**
 * Mutation testing with StrykerJS (opt-in, not part of `npm test`): `npm run test:mutation [-- MODULE ...]`.
 *
 * Each module is mutated on its own and judged by its own tests only, so one run stays practical on a small
 * machine: Stryker copies the repository into .stryker-tmp/, inserts every mutant into the TypeScript sources at
 * once (switched by an environment variable), compiles once (`tsc`), then runs the module's compiled test files
 * once per mutant with the command runner. A mutant the tests do not fail "survived": a bug they would miss.
 *
 * Prints the mutation score per module and every survivor (file:line, what was changed); writes the full
 * results to reports/mutation/<module>.json (Stryker's mutation-testing-report schema). `--list` names the
 * modules. LMFORGE_MUTATION_CONCURRENCY sets the parallel test processes (default 1).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Where a silent bug costs users most, each with the tests that guard it (TypeScript paths; run compiled). */
export const MODULES = {
  split: {
    about: 'the train/val split rule and the manifest it is recorded in',
    mutate: ['src/data/manifest.ts'],
    tests: ['test/data/split.test.ts', 'test/data/manifest.test.ts', 'test/data/loader.test.ts'],
  },
  loader: {
    about: 'the data loader (windows, shuffle, ranks, resume state, shard checks)',
    mutate: ['src/data/loader.ts'],
    tests: ['test/data/loader.test.ts'],
  },
  checkpoint: {
    about: 'checkpoint write, prune and resume',
    mutate: ['src/io/run-dir.ts', 'src/train/checkpoint.ts'],
    tests: ['test/io/run-dir.test.ts', 'test/train/checkpoint-save.test.ts'],
  },
  'hf-config': {
    about: 'Hugging Face config.json import and export',
    mutate: ['src/config/hf-config.ts'],
    tests: ['test/config/hf-config.test.ts'],
  },
  plan: {
    about: 'the feasibility planner and its device table',
    mutate: ['src/plan/plan.ts', 'src/plan/devices.ts'],
    tests: ['test/plan/plan.test.ts', 'test/plan/devices.test.ts'],
  },
  schedule: {
    about: 'learning-rate schedules',
    mutate: ['src/train/schedule.ts'],
    tests: ['test/train/schedule.test.ts'],
  },
  'decay-groups': {
    about: "the optimizer's weight-decay groups: which tensors decay, their ranges, ZeRO-1 clipping of the ranges",
    // Only the decay parts of layout.ts (the decay flag of each tensor, the ranges) and of the ZeRO-1 optimizer.
    mutate: ['src/model/layout.ts:116-127', 'src/model/layout.ts:216-225', 'src/parallel/zero-shard.ts', 'src/train/adamw.ts', 'src/train/optimizer.ts:110-145'],
    tests: ['test/model/layout.test.ts', 'test/train/decay-groups.test.ts', 'test/parallel/zero-shard.test.ts'],
  },
};

const compiled = (t) => join('dist', t.replace(/\.ts$/, '.js'));

/** Detected / (detected + undetected), as Stryker defines the score; compile errors and ignored mutants do not count. */
function score(results) {
  const count = (...s) => results.filter((r) => s.includes(r.status)).length;
  const detected = count('Killed', 'Timeout');
  const undetected = count('Survived', 'NoCoverage');
  return { total: results.length, detected, undetected, invalid: count('CompileError', 'RuntimeError'), score: detected / Math.max(1, detected + undetected) };
}

async function runModule(name, mod) {
  const { Stryker } = await import('@stryker-mutator/core');
  const command = `node --test --test-concurrency=1 ${mod.tests.map(compiled).join(' ')}`;
  const stryker = new Stryker({
    testRunner: 'command',
    commandRunner: { command },
    buildCommand: 'npx tsc -p .',
    mutate: mod.mutate,
    coverageAnalysis: 'off',
    concurrency: Number(process.env.LMFORGE_MUTATION_CONCURRENCY ?? 1),
    ignorePatterns: ['dist', 'runs', '.device', 'reports'],
    reporters: ['progress', 'json'],
    jsonReporter: { fileName: `reports/mutation/${name}.json` },
    timeoutMS: 60000,
    tempDirName: '.stryker-tmp',
    cleanTempDir: 'always',
    logLevel: 'warn',
  });
  const results = await stryker.runMutationTest();
  return results;
}

const args = process.argv.slice(2);
if (args.includes('--list') || args.includes('--help')) {
  for (const [name, m] of Object.entries(MODULES)) process.stdout.write(`${name.padEnd(14)} ${m.about}\n${''.padEnd(15)}mutates ${m.mutate.join(', ')}\n`);
  process.exit(0);
}
const unknown = args.filter((a) => !(a in MODULES));
if (unknown.length) {
  process.stderr.write(`mutation: unknown module ${unknown.join(', ')}; known: ${Object.keys(MODULES).join(', ')}\n`);
  process.exit(2);
}
process.chdir(ROOT);
const chosen = args.length ? args : Object.keys(MODULES);
const summary = [];
for (const name of chosen) {
  process.stderr.write(`\n== ${name}: ${MODULES[name].about}\n`);
  const t0 = Date.now();
  const results = await runModule(name, MODULES[name]);
  const s = score(results);
  summary.push({ name, ...s, minutes: (Date.now() - t0) / 60000 });
  const survivors = results.filter((r) => r.status === 'Survived' || r.status === 'NoCoverage');
  for (const r of survivors)
    process.stdout.write(`  survived ${r.fileName.replace(ROOT + '/', '')}:${r.location.start.line} ${r.mutatorName}: ${JSON.stringify(r.replacement ?? '')}\n`);
}
mkdirSync(join(ROOT, 'reports', 'mutation'), { recursive: true });
writeFileSync(join(ROOT, 'reports', 'mutation', 'summary.json'), JSON.stringify(summary, null, 1) + '\n');
process.stdout.write('\nmodule          mutants  killed  survived  invalid   score  minutes\n');
for (const s of summary)
  process.stdout.write(
    `${s.name.padEnd(14)} ${String(s.total).padStart(8)} ${String(s.detected).padStart(7)} ${String(s.undetected).padStart(9)} ${String(s.invalid).padStart(8)} ${(100 * s.score).toFixed(1).padStart(6)}% ${s.minutes.toFixed(1).padStart(8)}\n`,
  );
