/**
 * What the two kernel-mutation tests share (mutation.test.ts for attention.cu, flash-mutation.test.ts for
 * flash_attention.cu): the barrier sites of a kernel file, removing each in turn under both warp orders, and the
 * interpreter's own objects that a g++-built driver links against.
 */
import { readFileSync } from 'node:fs';
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
