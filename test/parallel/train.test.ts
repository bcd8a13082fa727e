/**
 * Data-parallel training end to end, with `mpirun --oversubscribe -np 2` on a tiny model and a tiny dataset:
 * 2 ranks equal 1 rank with twice the micro-batch, ZeRO-1 equals plain data parallel, resumes are bit-exact on
 * the same world size and work (with a warning) on another, and a killed rank stops the job with a clear
 * message while the last checkpoint stays loadable.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CLI, relErr } from '../helpers.js';
import { tmpDir } from '../data/helpers.js';
import { mpirunArgs, SKIP_MPI } from './mpi-env.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { latestCheckpoint } from '../../src/io/run-dir.js';
import { CpuBackend } from '../../src/engine/cpu.js';
import { Decoder } from '../../src/model/decoder.js';
import type { ModelConfig } from '../../src/config/model.js';

const TIMEOUT = 120_000;
let root = '';
let data = '';

/** Tiny Qwen3-style model (the real vocabulary: the data uses the bundled tokenizer), few steps, checkpoints at 2 and 4. */
function settings(microBatch: number, extra: string[] = []): string[] {
  return [
    `data=${data}`, 'steps=4', 'seq=16', 'grad_accum=2', `micro_batch=${microBatch}`, 'eval_every=2', 'eval_batches=2',
    'checkpoint_every=2', 'keep_checkpoints=5', 'sample_tokens=0', 'warmup_steps=1', 'lr=1e-2', 'threads=1',
    'model.hidden_size=32', 'model.n_layer=1', 'model.n_head=2', 'model.n_kv_head=1', 'model.head_dim=16', 'model.ffn_hidden=64',
    ...extra,
  ];
}

function train1(args: string[]): SpawnSyncReturns<string> {
  const r = spawnSync(process.execPath, [CLI, 'train', '--quiet', ...args], { encoding: 'utf8', timeout: TIMEOUT });
  assert.equal(r.status, 0, `1-rank train failed: ${r.stderr}`);
  return r;
}

function train2(args: string[]): SpawnSyncReturns<string> {
  const r = spawnSync('mpirun', [...mpirunArgs(2), process.execPath, CLI, 'train', '--quiet', ...args], { encoding: 'utf8', timeout: TIMEOUT });
  assert.equal(r.status, 0, `2-rank train failed (${r.status} ${r.signal}): ${r.stderr}`);
  return r;
}

interface Metric {
  kind: string;
  step: number;
  loss: number;
}

function losses(run: string): Metric[] {
  return fs
    .readFileSync(path.join(run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Metric)
    .filter((m) => m.kind === 'train' || m.kind === 'eval');
}

function ckpt(run: string, step: number): string {
  return path.join(run, 'checkpoints', `step-${String(step).padStart(8, '0')}`);
}

/** Every tensor of a safetensors file, concatenated in name order. */
function flat(file: string): Float64Array {
  const st = readSafetensors(file);
  const parts = st.names().sort().map((n) => st.toFloat32(n));
  const out = new Float64Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function assertSameRun(a: string, b: string, what: string): void {
  const la = losses(a);
  const lb = losses(b);
  assert.equal(la.length, lb.length, `${what}: metric counts`);
  for (let i = 0; i < la.length; i++) {
    assert.equal(la[i]!.kind, lb[i]!.kind);
    assert.equal(la[i]!.step, lb[i]!.step);
    const rel = Math.abs(la[i]!.loss - lb[i]!.loss) / Math.abs(lb[i]!.loss);
    assert.ok(rel <= 1e-6, `${what}: ${la[i]!.kind} loss at step ${la[i]!.step}: ${la[i]!.loss} vs ${lb[i]!.loss} (rel ${rel})`);
  }
  for (const file of ['model.safetensors', 'optimizer.safetensors']) {
    const e = relErr(flat(path.join(ckpt(a, 4), file)), flat(path.join(ckpt(b, 4), file)));
    assert.ok(e <= 1e-6, `${what}: final ${file} differs by ${e} (relative L2)`);
  }
}

/** A copy of a finished run rolled back to its step-2 checkpoint, to resume from. */
function rollBack(run: string, to: string): void {
  fs.cpSync(run, to, { recursive: true });
  fs.rmSync(ckpt(to, 4), { recursive: true });
  fs.writeFileSync(path.join(to, 'checkpoints', 'latest'), 'step-00000002\n');
}

function sameBytes(a: string, b: string): boolean {
  return Buffer.compare(fs.readFileSync(a), fs.readFileSync(b)) === 0;
}

before(() => {
  if (SKIP_MPI) return;
  root = tmpDir('parallel');
  const words = 'the a river stone light model token data train rank loss sum mean gradient shard north south quiet bright'.split(' ');
  let s = 7;
  const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0);
  const docs = Array.from({ length: 300 }, () => Array.from({ length: 20 + (next() % 60) }, () => words[next() % words.length]).join(' ') + '.');
  fs.writeFileSync(path.join(root, 'corpus.txt'), docs.join('\n\n'));
  data = path.join(root, 'data');
  const r = spawnSync(
    process.execPath,
    [CLI, 'prepare', '--input', path.join(root, 'corpus.txt'), '--out', data, '--text-mode', 'blank-lines', '--val-fraction', '0.1', '--quiet'],
    { encoding: 'utf8', timeout: TIMEOUT },
  );
  assert.equal(r.status, 0, r.stderr);
});

test('2-rank data parallel equals 1 rank with twice the micro-batch; ZeRO-1 equals plain data parallel', { skip: SKIP_MPI }, () => {
  const one = path.join(root, 'one');
  const dp = path.join(root, 'dp');
  const zero = path.join(root, 'zero');
  train1(['--run-dir', one, '--set', ...settings(4)]);
  train2(['--run-dir', dp, '--set', ...settings(2)]);
  train2(['--run-dir', zero, '--zero1', '--set', ...settings(2)]);
  assertSameRun(dp, one, '2-rank DP vs 1 rank');
  assertSameRun(zero, dp, 'ZeRO-1 vs DP');
  // Only rank 0 writes: one metrics line per step, checkpoints marked with the world size.
  assert.equal(losses(dp).filter((m) => m.kind === 'train').length, 4);
  const st = JSON.parse(fs.readFileSync(path.join(ckpt(zero, 4), 'state.json'), 'utf8')) as { worldSize: number; zero1: boolean; tokensSeen: number };
  assert.equal(st.worldSize, 2);
  assert.equal(st.zero1, true);
  assert.equal(st.tokensSeen, 4 * 2 * 2 * 2 * 16, 'tokens are counted over all ranks');
});

test('a resumed 2-rank run is bit-exact (plain and ZeRO-1)', { skip: SKIP_MPI }, () => {
  for (const name of ['dp', 'zero']) {
    const full = path.join(root, name);
    const resumed = path.join(root, `${name}-resumed`);
    rollBack(full, resumed);
    // ZeRO-1 is picked up from the checkpoint: no flag needed on resume.
    train2(['--resume', resumed]);
    for (const file of ['model.safetensors', 'optimizer.safetensors'])
      assert.ok(sameBytes(path.join(ckpt(resumed, 4), file), path.join(ckpt(full, 4), file)), `${name}: ${file} differs after resume`);
  }
});

test('a 2-rank checkpoint resumes on 1 rank with a warning, to float reassociation', { skip: SKIP_MPI }, () => {
  const resumed = path.join(root, 'dp-on-one');
  rollBack(path.join(root, 'dp'), resumed);
  const r = spawnSync(process.execPath, [CLI, 'train', '--quiet', '--resume', resumed, '--set', 'micro_batch=4'], { encoding: 'utf8', timeout: TIMEOUT });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /warning: the checkpoint was written by 2 rank\(s\) x micro-batch 2, this run has 1 x 4/);
  const e = relErr(flat(path.join(ckpt(resumed, 4), 'model.safetensors')), flat(path.join(ckpt(path.join(root, 'dp'), 4), 'model.safetensors')));
  assert.ok(e <= 1e-6, `weights after a cross-world-size resume differ by ${e}`);
});

/** Pids of processes whose environment says Open MPI rank `rank` and whose command line mentions `marker`. */
function rankPids(rank: number, marker: string): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const env = fs.readFileSync(`/proc/${d}/environ`, 'utf8').split('\0');
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (env.includes(`OMPI_COMM_WORLD_RANK=${rank}`) && cmd.includes(marker)) out.push(Number(d));
    } catch {
      // the process ended meanwhile, or is not ours to read
    }
  }
  return out;
}

test('killing one rank stops the other with a clear message; the last checkpoint stays valid', { skip: SKIP_MPI || process.platform !== 'linux' }, async () => {
  const run = path.join(root, 'killed');
  const args = ['train', '--quiet', '--nproc', '2', '--run-dir', run, '--set', ...settings(2, ['steps=100000', 'checkpoint_every=1', 'keep_checkpoints=2', 'eval_every=0'])];
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  child.stdout.resume();
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  let victim: number[] = [];
  // Wait for a few checkpoints, so the kill lands mid-run.
  while (Date.now() < deadline) {
    const last = latestCheckpoint(run);
    if (last && Number(path.basename(last).slice(5)) >= 3) {
      victim = rankPids(1, run);
      if (victim.length) break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(victim.length > 0, `rank 1 never got going: ${stderr}`);
  for (const pid of victim) process.kill(pid, 'SIGKILL');
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await exited;
  clearTimeout(timer);
  assert.notEqual(code, null, 'the job hung after a rank died and had to be killed by the test');
  assert.notEqual(code, 0);
  assert.match(stderr, /rank 1 .*(signal 9|Killed)/s, stderr);
  assert.match(stderr, /the 2-rank run stopped \(mpirun exit code \d+\)\. The last complete checkpoint is .*; continue with: lmforge train --resume/);
  assert.equal(rankPids(0, run).length, 0, 'rank 0 is still running');
  // The last checkpoint loads completely (weights, optimizer moments, state).
  const last = latestCheckpoint(run)!;
  const cfg = JSON.parse(fs.readFileSync(path.join(run, 'model_config.json'), 'utf8')) as ModelConfig;
  const model = new Decoder(new CpuBackend(), cfg);
  let moments = 0;
  const st = loadCheckpoint(last, model, { importMoments: (m, v) => (moments = m.length + v.length) });
  assert.ok(st.step >= 3);
  assert.equal(moments, 2 * model.layout.total);
  model.dispose();
});
