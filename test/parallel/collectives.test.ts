/** The MPI process group's collectives and ZeRO-1 AdamW, on 2 and 3 ranks, against plain references. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers.js';
import { mpirunArgs, SKIP_MPI } from './mpi-env.js';
import { bucketRanges } from '../../src/parallel/buckets.js';
import { launcherWorldSize } from '../../src/parallel/group.js';
import { WORKER_MODEL } from './collectives-worker.js';
import { plan } from '../../src/plan/plan.js';
import { getDevice } from '../../src/plan/devices.js';
import { validateModelConfig } from '../../src/config/schema.js';

const WORKER = join(REPO_ROOT, 'dist', 'test', 'parallel', 'collectives-worker.js');

interface WorkerReport {
  rank: number;
  size: number;
  kind: string;
  errors: Record<string, number>;
  stateBytes: { replicated: number; zero: number; params: number };
}

function runWorkers(np: number): WorkerReport[] {
  const r = spawnSync('mpirun', [...mpirunArgs(np), '-x', 'LMFORGE_DIST_WORKER=1', '-x', 'OMP_NUM_THREADS=1', process.execPath, WORKER], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 0, `mpirun failed (${r.status}, ${r.signal}): ${r.stderr}`);
  return r.stdout.trim().split('\n').map((l) => JSON.parse(l) as WorkerReport).sort((a, b) => a.rank - b.rank);
}

for (const np of [2, 3]) {
  test(`collectives and ZeRO-1 AdamW on ${np} ranks match plain references`, { skip: SKIP_MPI }, () => {
    const reports = runWorkers(np);
    assert.equal(reports.length, np);
    for (const rep of reports) {
      assert.equal(rep.kind, 'mpi');
      assert.equal(rep.size, np);
      for (const [name, err] of Object.entries(rep.errors)) assert.ok(err <= 1e-6, `rank ${rep.rank}: ${name} error ${err}`);
      // rank 0 gathers; every other check ran everywhere
      assert.ok('zeroParams' in rep.errors && 'reduceScatterUneven' in rep.errors);
      // optimizer state per rank falls as 1/N (m + v of ceil(P/N) elements)
      assert.equal(rep.stateBytes.zero, 8 * Math.ceil(rep.stateBytes.params / np));
      assert.equal(rep.stateBytes.replicated, 8 * rep.stateBytes.params);
    }
    // lmforge plan's ZeRO-1 optimizer estimate (8 B/param / N) agrees with the measured allocation to the padding.
    const p = plan({
      modelName: 'worker', model: validateModelConfig(WORKER_MODEL, 'worker'), gpus: np, gpu: getDevice('h100'), hours: 1,
      mfu: [0.4], seq: 16, microBatch: 1, gradBytes: 4,
    });
    assert.equal(p.params, reports[0]!.stateBytes.params, 'plan counts the parameters the engine allocates');
    const predicted = p.memory.find((m) => m.scheme === 'zero1')!.optimizer;
    assert.ok(Math.abs(predicted - reports[0]!.stateBytes.zero) <= 8, `plan ${predicted} vs measured ${reports[0]!.stateBytes.zero}`);
    assert.ok('gather' in reports[0]!.errors && 'zeroImportExport' in reports[0]!.errors);
  });
}

test('a JavaScript exception on one rank aborts the job instead of leaving the others waiting', { skip: SKIP_MPI }, () => {
  const t0 = Date.now();
  const r = spawnSync('mpirun', [...mpirunArgs(2), '-x', 'LMFORGE_DIST_WORKER=fail', process.execPath, WORKER], { encoding: 'utf8', timeout: 60_000 });
  assert.notEqual(r.signal, 'SIGTERM', `the job hung until the test timeout (${Date.now() - t0} ms)`);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /rank 1 of 2 failed \(uncaught exception\): injected failure on the last rank/);
  assert.match(r.stderr, /stopping all 2 ranks/);
  assert.doesNotMatch(r.stdout, /unreachable/);
});

test('collectives at world size 1 need no MPI (no launcher in the environment)', () => {
  const env: NodeJS.ProcessEnv = { ...process.env, LMFORGE_DIST_WORKER: '1' };
  for (const k of Object.keys(env)) if (/^(OMPI_|PMI_|PMIX_)/.test(k)) delete env[k];
  const r = spawnSync(process.execPath, [WORKER], { encoding: 'utf8', env, timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const rep = JSON.parse(r.stdout) as WorkerReport;
  assert.equal(rep.kind, 'single');
  for (const [name, err] of Object.entries(rep.errors)) assert.ok(err <= 1e-6, `${name} error ${err}`);
});

test('gradient buckets cover the buffer from the end, none larger than the bucket size', () => {
  const b = bucketRanges(1000, 300);
  assert.deepEqual(b, [
    { offset: 700, size: 300 },
    { offset: 400, size: 300 },
    { offset: 100, size: 300 },
    { offset: 0, size: 100 },
  ]);
  assert.deepEqual(bucketRanges(0, 300), []);
  assert.throws(() => bucketRanges(10, 0), /positive integer/);
});

test('launcher detection: Open MPI, PMI and Slurm PMIx environments; none means world size 1', () => {
  assert.equal(launcherWorldSize({}), null);
  assert.equal(launcherWorldSize({ OMPI_COMM_WORLD_SIZE: '4' }), 4);
  assert.equal(launcherWorldSize({ PMI_SIZE: '8' }), 8);
  assert.equal(launcherWorldSize({ PMIX_RANK: '0', SLURM_STEP_NUM_TASKS: '16' }), 16);
  assert.equal(launcherWorldSize({ SLURM_NTASKS: '16' }), null, 'srun without PMI does not start MPI ranks');
});
