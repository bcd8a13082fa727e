#!/usr/bin/env node
// Builds the CUDA engine (build/Release/lmforge_cuda.node) when a CUDA toolkit with cuBLASLt is present:
// nvcc compiles src/engine/cuda/*.cu, g++ compiles the Node-API glue (*.cc), g++ links against cudart and
// cublasLt. Without nvcc or cublasLt.h it prints one line and exits 0, so `npm install` still succeeds and
// the CPU engine serves. A failing build is reported and (unless LMFORGE_CUDA_STRICT=1) does not fail install.
//
//   node scripts/build-cuda.mjs                 build if possible
//   node scripts/build-cuda.mjs --compile-only  compile every source that this machine can compile (no link);
//                                               used to check the kernels on machines without cuBLAS
// Environment: CUDA_HOME / CUDA_PATH (toolkit root), LMFORGE_CUDA_ARCH (e.g. "80;90"; default: the architecture
// of the GPUs nvidia-smi finds, else "80;90"), LMFORGE_NODE_INCLUDE (Node's include/node),
// LMFORGE_CUBLAS_INCLUDE / LMFORGE_CUBLAS_LIB (cuBLAS elsewhere), LMFORGE_CUDA_JOBS (parallel compiles, default one
// per core), LMFORGE_CUDA_STRICT=1 (a failed build fails the install).
// (The interpreted CUDA engine, the same sources on the CPU, is built by node-gyp: binding.gyp.)
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { createRequire } from 'node:module';
import { basename, delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const SKIP_MESSAGE = 'CUDA toolkit with cuBLAS not found: CUDA backend skipped';

/** The nvcc -gencode flags for a list like "80;90" (or "80,90"); "90a" etc. pass through. */
export function archFlags(spec) {
  const archs = String(spec ?? '80;90').split(/[;, ]+/).filter(Boolean);
  if (archs.length === 0) throw new Error('LMFORGE_CUDA_ARCH is empty: give compute capabilities such as "80;90"');
  const flags = [];
  for (const a of archs) {
    if (!/^\d{2,3}[af]?$/.test(a)) throw new Error(`LMFORGE_CUDA_ARCH: '${a}' is not a compute capability (e.g. 80, 90, 90a)`);
    flags.push('-gencode', `arch=compute_${a},code=sm_${a}`);
  }
  return flags;
}

/**
 * The compute capabilities of the GPUs on this machine ("90" for an H100/H200), from nvidia-smi's
 * "9.0"-style output; null where nvidia-smi is absent or finds none. `query` is injectable for tests.
 */
export function detectArch(query = () => {
  const r = spawnSync('nvidia-smi', ['--query-gpu=compute_cap', '--format=csv,noheader'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout : '';
}) {
  const caps = [...new Set(query().split('\n').map((l) => l.trim()).filter((l) => /^\d+\.\d+$/.test(l)).map((l) => l.replace('.', '')))];
  return caps.length ? caps.join(';') : null;
}

/**
 * Finds the toolchain: nvcc, the CUDA include and library folders, and the folder holding cublasLt.h.
 * `exists` and `env` are injectable for tests. Returns { ok: false, reason } when something is missing.
 */
export function findToolkit(env = process.env, exists = existsSync) {
  const roots = [];
  for (const v of [env.CUDA_HOME, env.CUDA_PATH]) if (v) roots.push(v);
  roots.push('/usr/local/cuda');
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && exists(join(dir, 'nvcc'))) roots.push(resolve(dir, '..'));
  }
  const root = roots.find((r) => exists(join(r, 'bin', 'nvcc')));
  if (!root) return { ok: false, reason: 'nvcc not found (set CUDA_HOME or put nvcc on PATH)' };
  const include = join(root, 'include');
  const libCandidates = [join(root, 'lib64'), join(root, 'lib'), join(root, 'targets', 'x86_64-linux', 'lib')];
  const lib = libCandidates.find((d) => exists(join(d, 'libcudart.so'))) ?? libCandidates[0];
  const cublasIncludes = [env.LMFORGE_CUBLAS_INCLUDE, include, join(root, 'targets', 'x86_64-linux', 'include')].filter(Boolean);
  const cublasInclude = cublasIncludes.find((d) => exists(join(d, 'cublasLt.h')));
  const cublasLibs = [env.LMFORGE_CUBLAS_LIB, lib, ...libCandidates].filter(Boolean);
  const cublasLib = cublasLibs.find((d) => exists(join(d, 'libcublasLt.so'))) ?? null;
  const base = { root, nvcc: join(root, 'bin', 'nvcc'), include, lib };
  if (!cublasInclude) return { ok: false, reason: `cublasLt.h not found (looked in ${cublasIncludes.join(', ')})`, ...base };
  return { ok: true, ...base, cublasInclude, cublasLib };
}

/** Node's own headers (node_api.h): next to the running node, or given. */
export function findNodeInclude(env = process.env, exists = existsSync, execPath = process.execPath) {
  const candidates = [
    env.LMFORGE_NODE_INCLUDE,
    join(dirname(execPath), '..', 'include', 'node'),
    join(fileURLToPath(new URL('..', import.meta.url)), '.device', 'node-include'),
  ].filter(Boolean);
  return candidates.find((d) => exists(join(d, 'node_api.h'))) ?? null;
}

/**
 * Sources of the CUDA engine, split by compiler; gemm.cc is the one file that needs cublasLt.h. The Node-API
 * plumbing and the op table's argument readers shared with the CPU engine (../native/glue.cc,
 * ../native/op_args.cc) are compiled in too.
 */
export function listSources(dir) {
  const files = readdirSync(dir).sort();
  return {
    cu: files.filter((f) => f.endsWith('.cu')),
    cc: [...files.filter((f) => f.endsWith('.cc')), join('..', 'native', 'glue.cc'), join('..', 'native', 'op_args.cc')],
    needsCublas: new Set(['gemm.cc']),
  };
}

function run(cmd, args) {
  return new Promise((resolvePromise, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolvePromise() : reject(new Error(`${cmd} ${args.join(' ')}\nexited with ${code}`))));
  });
}

async function pool(tasks, jobs) {
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) await tasks[next++]();
  };
  await Promise.all(Array.from({ length: Math.max(1, jobs) }, worker));
}

async function main(argv) {
  const compileOnly = argv.includes('--compile-only');
  const rootDir = fileURLToPath(new URL('..', import.meta.url));
  const srcDir = join(rootDir, 'src', 'engine', 'cuda');
  const tk = findToolkit();
  if (!tk.nvcc || (!tk.ok && !compileOnly)) {
    process.stdout.write(`${SKIP_MESSAGE}${process.env.LMFORGE_CUDA_VERBOSE ? ` (${tk.reason})` : ''}\n`);
    return 0;
  }
  const nodeInclude = findNodeInclude();
  const require = createRequire(import.meta.url);
  let napiInclude = null;
  try {
    napiInclude = require('node-addon-api').include_dir;
  } catch {
    napiInclude = null;
  }
  const { cu, cc, needsCublas } = listSources(srcDir);
  const objDir = join(rootDir, 'build', 'cuda-obj');
  mkdirSync(objDir, { recursive: true });
  const archSpec = process.env.LMFORGE_CUDA_ARCH || (compileOnly ? undefined : detectArch() ?? undefined);
  const arch = archFlags(archSpec);
  const archCount = arch.length / 2;
  const incs = [`-I${srcDir}`, `-I${tk.include}`];
  if (tk.cublasInclude && tk.cublasInclude !== tk.include) incs.push(`-I${tk.cublasInclude}`);
  const ccIncs = [...incs];
  if (nodeInclude) ccIncs.push(`-I${nodeInclude}`);
  if (napiInclude) ccIncs.push(`-I${napiInclude.replace(/"/g, '')}`);
  const tasks = [];
  const objects = [];
  for (const f of cu) {
    const o = join(objDir, `${f}.o`);  // X.cu.o: a family has both X.cu (kernels) and X.cc (glue)
    objects.push(o);
    // --threads: nvcc compiles the architectures of one file in parallel too.
    tasks.push(() => run(tk.nvcc, ['-O3', '-std=c++17', '--threads', String(archCount), '-Xcompiler', '-fPIC', ...arch, ...incs, '-c', join(srcDir, f), '-o', o]));
  }
  const skipped = [];
  for (const f of cc) {
    if (!tk.cublasInclude && needsCublas.has(f)) {
      skipped.push(f);
      continue;
    }
    if (!nodeInclude || !napiInclude) {
      if (!compileOnly) throw new Error('Node-API headers not found: set LMFORGE_NODE_INCLUDE to the folder holding node_api.h');
      skipped.push(f);
      continue;
    }
    const o = join(objDir, `${basename(f)}.o`);
    objects.push(o);
    tasks.push(() => run('g++', ['-O2', '-std=c++17', '-fPIC', '-Wall', '-DNAPI_VERSION=8', '-DNAPI_DISABLE_CPP_EXCEPTIONS', ...ccIncs, '-c', join(srcDir, f), '-o', o]));
  }
  const jobs = Number(process.env.LMFORGE_CUDA_JOBS) || cpus().length;
  await pool(tasks, jobs);
  if (compileOnly) {
    process.stdout.write(`compiled ${objects.length} CUDA engine sources (${arch.filter((x) => x !== '-gencode').join(' ')})` +
      (skipped.length ? `; not compiled here (missing headers): ${skipped.join(', ')}` : '') + '\n');
    return 0;
  }
  const out = join(rootDir, 'build', 'Release', 'lmforge_cuda.node');
  mkdirSync(dirname(out), { recursive: true });
  const libDirs = [...new Set([tk.lib, tk.cublasLib].filter(Boolean))];
  await run('g++', ['-shared', '-o', out, ...objects, ...libDirs.map((d) => `-L${d}`), ...libDirs.map((d) => `-Wl,-rpath,${d}`), '-lcublasLt', '-lcudart']);
  process.stdout.write(`built ${out}\n`);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      const strict = process.env.LMFORGE_CUDA_STRICT === '1';
      process.stderr.write(`CUDA backend build failed: ${e instanceof Error ? e.message : String(e)}\n` +
        (strict ? '' : 'The CPU backend is unaffected; set LMFORGE_CUDA_STRICT=1 to make this failure fatal.\n'));
      process.exit(strict ? 1 : 0);
    },
  );
}
