// Used by binding.gyp: prints MPI/NCCL build settings for the optional `lmforge_mpi` addon (src/parallel/native).
//   node scripts/detect-mpi.cjs have      -> "yes" when `mpicc --showme` works, else "no" (and one line on stderr)
//   node scripts/detect-mpi.cjs cflags    -> include dirs from `mpicc --showme:incdirs`
//   node scripts/detect-mpi.cjs libs      -> linker flags from `mpicc --showme:link`
//   node scripts/detect-mpi.cjs nccl      -> "yes" when nccl.h and cuda_runtime.h are found (CUDA_HOME or /usr/local/cuda)
//   node scripts/detect-mpi.cjs ncclinc / nccllibs -> their include dirs and link flags
// Without MPI the install still succeeds: the CPU engine builds alone and multi-process training is disabled.
'use strict';
const { execFileSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const path = require('node:path');

function showme(what) {
  try {
    return execFileSync('mpicc', [`--showme:${what}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

function cudaRoots() {
  const roots = [process.env.NCCL_HOME, process.env.CUDA_HOME, process.env.CUDA_PATH, '/usr/local/cuda', '/usr'];
  return roots.filter((r) => typeof r === 'string' && r.length > 0);
}

function findHeader(name) {
  for (const r of cudaRoots()) {
    for (const inc of [path.join(r, 'include'), path.join(r, 'include', 'x86_64-linux-gnu')]) {
      if (existsSync(path.join(inc, name))) return inc;
    }
  }
  return null;
}

const mode = process.argv[2];
// LMFORGE_NO_MPI=1 builds without the MPI addon even where MPI is installed.
const haveMpi = process.env.LMFORGE_NO_MPI !== '1' && showme('incdirs') !== null && showme('link') !== null;
switch (mode) {
  case 'have':
    if (!haveMpi) process.stderr.write('MPI not found: multi-process training disabled\n');
    process.stdout.write(haveMpi ? 'yes' : 'no');
    break;
  case 'cflags':
    process.stdout.write((showme('incdirs') ?? '').split(/\s+/).filter(Boolean).join(' '));
    break;
  case 'libs': {
    // Also an rpath for every -L directory, so the addon finds libmpi without LD_LIBRARY_PATH.
    const flags = (showme('link') ?? '').split(/\s+/).filter(Boolean);
    const rpaths = flags.filter((f) => f.startsWith('-L')).map((f) => `-Wl,-rpath,${f.slice(2)}`);
    process.stdout.write([...flags, ...rpaths].join(' '));
    break;
  }
  case 'nccl':
    process.stdout.write(haveMpi && findHeader('nccl.h') && findHeader('cuda_runtime.h') ? 'yes' : 'no');
    break;
  case 'ncclinc': {
    const dirs = [findHeader('nccl.h'), findHeader('cuda_runtime.h')].filter(Boolean);
    process.stdout.write([...new Set(dirs)].join(' '));
    break;
  }
  case 'nccllibs': {
    const libs = [];
    for (const r of cudaRoots()) for (const d of ['lib64', 'lib', 'lib/x86_64-linux-gnu']) if (existsSync(path.join(r, d))) libs.push(`-L${path.join(r, d)}`, `-Wl,-rpath,${path.join(r, d)}`);
    process.stdout.write([...libs, '-lnccl', '-lcudart'].join(' '));
    break;
  }
  default:
    process.stderr.write(`detect-mpi.cjs: unknown mode '${String(mode)}' (have, cflags, libs, nccl, ncclinc, nccllibs)\n`);
    process.exit(2);
}
