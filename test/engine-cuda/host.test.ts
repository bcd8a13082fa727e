/**
 * Host-side logic of the CUDA backend that runs without a GPU: toolkit detection and nvcc flags of the build
 * script, device resolution for --device auto, the precision setting, and the message when the engine is absent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from '../helpers.js';
import { CudaBackend, cudaAvailability, precisionFromEnv } from '../../src/engine/cuda.js';
import { DEVICE_NAMES, parseDevice, resolveDevice } from '../../src/engine/index.js';
import { TRAIN_KEYS } from '../../src/config/train.js';
import { deviceFromName } from '../../src/plan/devices.js';

interface Toolkit {
  ok: boolean;
  reason?: string;
  nvcc?: string;
  include?: string;
  lib?: string;
  cublasInclude?: string;
  cublasLib?: string | null;
}
interface BuildScript {
  SKIP_MESSAGE: string;
  archFlags(spec?: string): string[];
  detectArch(query?: () => string): string | null;
  findToolkit(env: Record<string, string | undefined>, exists: (p: string) => boolean): Toolkit;
  findNodeInclude(env: Record<string, string | undefined>, exists: (p: string) => boolean, execPath: string): string | null;
  listSources(dir: string): { cu: string[]; cc: string[]; needsCublas: Set<string> };
}

async function script(): Promise<BuildScript> {
  return (await import(pathToFileURL(join(REPO_ROOT, 'scripts', 'build-cuda.mjs')).href)) as BuildScript;
}

/** A fake file system holding exactly `files`. */
function fs(files: string[]): (p: string) => boolean {
  const set = new Set(files);
  return (p) => set.has(p);
}

test('build: no nvcc anywhere means skip, with the reason', async () => {
  const b = await script();
  const tk = b.findToolkit({ PATH: '/usr/bin:/bin' }, fs([]));
  assert.equal(tk.ok, false);
  assert.match(tk.reason ?? '', /nvcc not found/);
  assert.equal(b.SKIP_MESSAGE, 'CUDA toolkit with cuBLAS not found: CUDA backend skipped');
});

test('build: nvcc without cublasLt.h (a runtime-only toolkit) is not enough', async () => {
  const b = await script();
  const tk = b.findToolkit({ PATH: '/opt/cuda/bin' }, fs(['/opt/cuda/bin/nvcc', '/opt/cuda/lib64/libcudart.so']));
  assert.equal(tk.ok, false);
  assert.match(tk.reason ?? '', /cublasLt\.h not found/);
  assert.equal(tk.nvcc, '/opt/cuda/bin/nvcc'); // still known, for --compile-only
});

test('build: CUDA_HOME wins, and cuBLAS may live elsewhere (e.g. a Python wheel)', async () => {
  const b = await script();
  const files = [
    '/usr/local/cuda/bin/nvcc', '/usr/local/cuda/include/cublasLt.h',
    '/cuda13/bin/nvcc', '/cuda13/lib64/libcudart.so', '/wheel/include/cublasLt.h', '/wheel/lib/libcublasLt.so',
  ];
  const tk = b.findToolkit({ CUDA_HOME: '/cuda13', LMFORGE_CUBLAS_INCLUDE: '/wheel/include', LMFORGE_CUBLAS_LIB: '/wheel/lib' }, fs(files));
  assert.equal(tk.ok, true);
  assert.equal(tk.nvcc, '/cuda13/bin/nvcc');
  assert.equal(tk.cublasInclude, '/wheel/include');
  assert.equal(tk.cublasLib, '/wheel/lib');
  assert.equal(tk.lib, '/cuda13/lib64');
});

test('build: the standard /usr/local/cuda layout is found without any variable', async () => {
  const b = await script();
  const tk = b.findToolkit({}, fs(['/usr/local/cuda/bin/nvcc', '/usr/local/cuda/include/cublasLt.h', '/usr/local/cuda/lib64/libcudart.so', '/usr/local/cuda/lib64/libcublasLt.so']));
  assert.equal(tk.ok, true);
  assert.equal(tk.cublasInclude, '/usr/local/cuda/include');
  assert.equal(tk.cublasLib, '/usr/local/cuda/lib64');
});

test('build: arch flags for sm_80 and sm_90 by default; bad values are rejected', async () => {
  const b = await script();
  assert.deepEqual(b.archFlags(undefined), ['-gencode', 'arch=compute_80,code=sm_80', '-gencode', 'arch=compute_90,code=sm_90']);
  assert.deepEqual(b.archFlags('90a'), ['-gencode', 'arch=compute_90a,code=sm_90a']);
  assert.throws(() => b.archFlags('sm_90'), /not a compute capability/);
  assert.throws(() => b.archFlags(' ; '), /empty/);
});

test('build: the architecture comes from the GPUs nvidia-smi finds (one entry per distinct card)', async () => {
  const b = await script();
  assert.equal(b.detectArch(() => '9.0\n9.0\n'), '90');
  assert.equal(b.detectArch(() => '8.0\n9.0\n'), '80;90');
  assert.equal(b.detectArch(() => ''), null, 'no nvidia-smi: the default list');
  assert.equal(b.detectArch(() => 'No devices were found\n'), null);
});

test('build: Node headers come from the running node, or LMFORGE_NODE_INCLUDE', async () => {
  const b = await script();
  assert.equal(b.findNodeInclude({}, fs(['/n/include/node/node_api.h']), '/n/bin/node'), '/n/include/node');
  assert.equal(b.findNodeInclude({ LMFORGE_NODE_INCLUDE: '/h' }, fs(['/h/node_api.h']), '/x/node'), '/h');
  assert.equal(b.findNodeInclude({}, fs([]), '/x/node'), null);
});

test('build: every kernel family has its sources, the glue mirrors the CPU files, only gemm.cc needs cuBLAS', async () => {
  const b = await script();
  const s = b.listSources(join(REPO_ROOT, 'src', 'engine', 'cuda'));
  for (const f of ['memory', 'embedding', 'norm', 'rope', 'attention', 'activation', 'loss', 'optim'])
    assert.ok(s.cu.includes(`${f}.cu`), `${f}.cu`);
  // One glue file per family, named as on the CPU (src/engine/cpu/<family>.cc defines the same op:: functions).
  const cpuFamilies = readdirSync(join(REPO_ROOT, 'src', 'engine', 'cpu')).filter((f) => f.endsWith('.cc'));
  for (const f of [...cpuFamilies, 'gemm.cc']) assert.ok(s.cc.includes(f), `cuda/${f}`);
  assert.deepEqual([...s.needsCublas], ['gemm.cc']);
});

test('device: auto picks CUDA only when it is available (never the interpreter); the others are taken literally', () => {
  assert.equal(resolveDevice('auto', () => true), 'cuda');
  assert.equal(resolveDevice('auto', () => false), 'cpu');
  assert.equal(resolveDevice('cpu', () => true), 'cpu');
  assert.equal(resolveDevice('cuda', () => false), 'cuda');
  assert.equal(resolveDevice('cuda-interpret', () => true), 'cuda-interpret');
  assert.throws(() => resolveDevice('tpu' as 'cpu'), /unknown device 'tpu'/);
  assert.equal(parseDevice('cuda-interpret'), 'cuda-interpret');
  assert.throws(() => parseDevice('gpu'), /--device gpu: not a device; use cpu, cuda, cuda-interpret, auto/);
  // The training config offers the same devices (config sits below engine, so it lists them itself).
  assert.deepEqual([...TRAIN_KEYS.device.values], [...DEVICE_NAMES]);
});

test('interpret build: every kernel file has its g++ wrapper, and the addon builds from the same glue', () => {
  const dir = join(REPO_ROOT, 'src', 'engine', 'cuda');
  const wrappers = readdirSync(join(dir, 'interpret')).filter((f) => /^kernels-.*\.cc$/.test(f));
  const kernels = readdirSync(dir).filter((f) => f.endsWith('.cu'));
  assert.deepEqual(wrappers.map((f) => f.replace(/^kernels-/, '').replace(/\.cc$/, '.cu')).sort(), kernels.sort());
  for (const w of wrappers) {
    const cu = w.replace(/^kernels-/, '').replace(/\.cc$/, '.cu');
    assert.match(readFileSync(join(dir, 'interpret', w), 'utf8'), new RegExp(`#include "\\.\\./${cu.replace('.', '\\.')}"`), w);
  }
  // No kernel launches around the one launcher, and no inline PTX outside ptx.cuh.
  for (const f of kernels) {
    const src = readFileSync(join(dir, f), 'utf8');
    assert.doesNotMatch(src, /<<</, `${f} launches a kernel outside device.cuh's launch()`);
    assert.doesNotMatch(src, /\basm\b/, `${f} has inline PTX: put it behind a named function in ptx.cuh`);
    assert.doesNotMatch(src, /extern __shared__/, `${f}: use LMF_DYNAMIC_SHARED (device.cuh) for dynamic shared memory`);
  }
  const gyp = readFileSync(join(REPO_ROOT, 'binding.gyp'), 'utf8');
  assert.match(gyp, /lmforge_cuda_interpret/);
});

test('precision: bf16 by default, fp32 on request, anything else is an error naming the choices', () => {
  assert.equal(precisionFromEnv({}), 'bf16');
  assert.equal(precisionFromEnv({ LMFORGE_CUDA_PRECISION: 'fp32' }), 'fp32');
  assert.equal(precisionFromEnv({ LMFORGE_CUDA_PRECISION: 'BF16' }), 'bf16');
  assert.throws(() => precisionFromEnv({ LMFORGE_CUDA_PRECISION: 'fp16' }), /use bf16 \(default\) or fp32/);
});

test('availability: without the built engine or a GPU the reason says what to do', () => {
  const a = cudaAvailability();
  if (a.ok) return; // a CUDA machine: the op tests cover it
  assert.match(a.reason, /not built|could not be loaded|CUDA device|driver/);
  assert.match(a.reason, /cuda-interpret/, 'the message offers the interpreted engine');
});

test('the interpreted engine is built by every install and describes itself', () => {
  const a = cudaAvailability('cuda-interpret');
  assert.equal(a.ok, true, a.ok ? '' : a.reason);
  const be = new CudaBackend({ interpret: true });
  assert.match(be.describe(), /^cuda-interpret: /);
  assert.equal(deviceFromName(be.describe()), undefined, 'no GPU peak (and so no MFU) for the interpreter');
  assert.equal(be.kind, 'cuda-interpret');
});
