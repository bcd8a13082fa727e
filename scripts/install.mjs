#!/usr/bin/env node
// `npm install` step: builds the native engines from source unless they are already newer than every source
// they come from (npx installs the package a second time into its cache, and a rebuild there is pure waste).
//   CPU engine, interpreted CUDA engine (+ MPI addon when MPI is found): node-gyp, see binding.gyp
//   CUDA engine: scripts/build-cuda.mjs (skips itself with one line where there is no CUDA toolkit with cuBLAS)
// LMFORGE_REBUILD=1 forces both builds.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const force = process.env.LMFORGE_REBUILD === '1';

/** Newest modification time among files under the given paths (files or folders). */
function newest(paths) {
  let t = 0;
  for (const p of paths) {
    const full = join(root, p);
    if (!existsSync(full)) continue;
    const st = statSync(full);
    if (st.isDirectory()) t = Math.max(t, newest(readdirSync(full).map((f) => join(p, f))));
    else t = Math.max(t, st.mtimeMs);
  }
  return t;
}

function upToDate(output, sources) {
  const out = join(root, output);
  return !force && existsSync(out) && statSync(out).mtimeMs > newest(sources);
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.error) throw r.error;
  if (r.status !== 0) process.exit(r.status ?? 1);
}

// node-gyp builds the CPU engine and the interpreted CUDA engine (the CUDA sources with g++, no toolkit).
const gypSources = ['binding.gyp', 'src/engine/cpu', 'src/engine/cuda', 'src/engine/native', 'src/parallel/native', 'scripts/detect-mpi.cjs'];
if (upToDate('build/Release/lmforge_cpu.node', gypSources) && upToDate('build/Release/lmforge_cuda_interpret.node', gypSources)) {
  console.log('lmforge: native CPU engine and interpreted CUDA engine are up to date (LMFORGE_REBUILD=1 forces a rebuild)');
} else {
  // npm puts its own node-gyp in npm_config_node_gyp for install scripts.
  const gyp = process.env.npm_config_node_gyp;
  if (gyp) run(process.execPath, [gyp, 'rebuild']);
  else run('npx', ['--yes', 'node-gyp', 'rebuild']);
}
if (upToDate('build/Release/lmforge_cuda.node', ['src/engine/cuda', 'src/engine/native', 'scripts/build-cuda.mjs'])) {
  console.log('lmforge: CUDA engine is up to date');
} else {
  run(process.execPath, [join(root, 'scripts', 'build-cuda.mjs')]);
}
