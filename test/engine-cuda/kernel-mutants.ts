/**
 * What the kernel-mutation tests share (mutation.test.ts for attention.cu, flash-mutation.test.ts for
 * flash_attention.cu, loss-mutation.test.ts for loss.cu): the barrier sites of a kernel file, removing each in turn
 * under both warp orders, and compiling broken copies of a kernel file against the interpreter's own objects with a
 * float64 driver, each of which must fail it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { CudaBackend } from '../../src/engine/cuda.js';
import { REPO_ROOT } from '../helpers.js';

/** Every `__syncthreads();` line of `source`, named as the interpreter's 'skip-sync' option names it (file:line). */
export function barrierSites(source: string): string[] {
  const name = basename(source);
  return readFileSync(source, 'utf8').split('\n').flatMap((l, i) => (/^\s*__syncthreads\(\);/.test(l) ? [`${name}:${i + 1}`] : []));
}

/**
 * Drops each barrier in turn and returns the sites whose removal `passes` still accepts. A barrier missing between
 * warps shows in one direction per warp order, so a site counts as caught when the default order or its reverse
 * (the orders the interpreter offers; both deterministic) fails the check. Options are restored on every path.
 */
export function missedBarriers(g: CudaBackend, sites: readonly string[], passes: () => boolean): string[] {
  const missed: string[] = [];
  for (const site of sites) {
    g.interpretOption('skip-sync', site);
    try {
      const caught = ['warps', 'warps-reverse'].some((order) => {
        g.interpretOption('schedule', order);
        return !passes();
      });
      if (!caught) missed.push(site);
    } finally {
      g.interpretOption('skip-sync', '');
      g.interpretOption('schedule', 'warps');
    }
  }
  return missed;
}

/** The node-gyp objects of the interpreter itself (runtime, blocks, models), to link a driver against. */
export function interpreterObjects(): string[] {
  const dir = join(REPO_ROOT, 'build', 'Release', 'obj.target', 'lmforge_cuda_interpret', 'src', 'engine', 'cuda', 'interpret');
  return ['block', 'runtime', 'ptx'].map((f) => join(dir, `${f}.o`));
}

/** One broken copy: the text to replace (it must occur exactly once in the source) and its replacement. */
export type SourceMutants = Record<string, [from: string, to: string]>;

/**
 * Compiles `source` as written and once per mutant (g++ against the interpreter's objects, linked with the
 * float64 check `driver` from test/engine-cuda/native), runs each, and asserts that the source as written passes
 * (exit 0) and every mutant fails (non-zero exit or a crash). The driver is compiled once, then the variants two at
 * a time (the machine may have only two cores). `-O0` by default: the variants compile in 2/3 of the time and run
 * as fast (the interpreter's objects are optimised).
 */
export function assertMutantsFail(source: string, driver: string, mutants: SourceMutants): void {
  const objects = interpreterObjects();
  for (const o of objects) assert.ok(existsSync(o), `${o} is missing: run npm install (it builds the interpreted engine)`);
  const name = basename(source);
  const text = readFileSync(source, 'utf8');
  const variants: [string, string][] = [['as written', text]];
  for (const [what, [from, to]] of Object.entries(mutants)) {
    assert.equal(text.split(from).length, 2, `'${from}' occurs once in ${name}`);
    variants.push([what, text.replace(from, to)]);
  }
  const dir = mkdtempSync(join(tmpdir(), 'lmf-mutants-'));
  try {
    const flags = ['-std=c++17', '-O0', '-DLMF_CUDA_INTERPRET', '-Wno-unknown-pragmas',
      `-I${join(REPO_ROOT, 'src', 'engine', 'cuda', 'interpret', 'include')}`, `-I${join(REPO_ROOT, 'src', 'engine', 'cuda')}`];
    const driverObject = join(dir, 'driver.o');
    const builds = variants.map(([, variant], i) => {
      const cc = join(dir, `variant-${i}.cc`);
      writeFileSync(cc, variant);
      return { exe: join(dir, `check-${i}`), args: [...flags, cc, driverObject, ...objects, '-o', join(dir, `check-${i}`)] };
    });
    const quote = (args: string[]): string => args.map((a) => `'${a}'`).join(' ');
    const driverArgs = [...flags, '-c', join(REPO_ROOT, 'test', 'engine-cuda', 'native', driver), '-o', driverObject];
    const script = `g++ ${quote(driverArgs)} || exit 1\n` +
      builds.map((b) => `g++ ${quote(b.args)} &\n[ $(jobs -r | wc -l) -ge 2 ] && wait -n`).join('\n') + '\nwait';
    const compiled = spawnSync('bash', ['-c', script], { encoding: 'utf8' });
    assert.equal(compiled.status, 0, compiled.stderr);
    const results = variants.map(([what], i) => {
      assert.ok(existsSync(builds[i]!.exe), `${what}: not built: ${compiled.stderr}`);
      const run = spawnSync(builds[i]!.exe, [], { encoding: 'utf8' });
      return { what, status: run.status, out: (run.stdout + run.stderr).trim() };
    });
    assert.equal(results[0]!.status, 0, `${name} as written must pass: ${results[0]!.out}`);
    // A mutant may also crash (status null), e.g. a 0 / 0 from a tile left without work.
    for (const r of results.slice(1)) assert.notEqual(r.status, 0, `mutant '${r.what}' of ${name} passed: ${r.out}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
