#!/usr/bin/env node
/**
 * Kill drill (`npm run test:faults`, opt-in, run before you submit): SIGKILLs `lmforge train` and `lmforge prepare`
 * at random moments and checks that finishing the job afterwards gives exactly what an uninterrupted run gives.
 *
 *   train    a tiny model, 8 steps, checkpoints every 2 steps. Each trial kills the run 1-3 times, at a random moment or
 *            (one kill in three) while a checkpoint is being written, then runs it to the end (--resume once a
 *            train_config.json exists, else the original command). Pass: exit 0; metrics.jsonl equal to the
 *            uninterrupted run's (timing fields aside); the final model.safetensors, optimizer.safetensors and
 *            state.json (run_dir aside) identical byte for byte; no temporary file left anywhere in the run.
 *   prepare  ~100 small shards from a generated corpus with 2 workers. Each trial kills it 1-3 times at random
 *            moments and reruns the same command. Pass: every file byte-identical to the uninterrupted output,
 *            no temporary left.
 *
 *   node scripts/faults.mjs [--trials 20] [--only train|prepare] [--seed N] [--keep]
 * Needs a build (npm run build). Prints one line per trial and a summary; exits 1 when any trial fails.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(REPO, 'bin', 'lmforge.js');

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const TRIALS = Number(opt('trials', 20));
const ONLY = opt('only', '');
const SEED = Number(opt('seed', Date.now() % 1e9));
const KEEP = args.includes('--keep');

let s = SEED >>> 0 || 1;
const rand = () => {
  s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
  return s / 2 ** 32;
};

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'lmforge-faults-'));
const log = (line) => process.stdout.write(line + '\n');

function runToEnd(argv) {
  const r = spawnSync(process.execPath, [CLI, ...argv], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`lmforge ${argv.join(' ')} exited ${r.status}:\n${r.stderr}`);
  return r;
}

/** Starts a command and SIGKILLs it after `ms`, or as soon as `trigger()` holds (polled), whichever is first. */
function startAndKill(argv, ms, trigger) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...argv], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    let killedAt = null;
    const kill = (how) => {
      if (killedAt === null && child.exitCode === null) {
        killedAt = how;
        child.kill('SIGKILL');
      }
    };
    const timer = setTimeout(() => kill('timer'), ms);
    const poll = trigger ? setInterval(() => trigger(child.pid) && setTimeout(() => kill('trigger'), rand() * 40), 3) : null;
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (poll) clearInterval(poll);
      resolve({ code, signal, killed: killedAt, stderr });
    });
  });
}

function temporariesUnder(dir) {
  const out = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (/\.tmp(-\d+)?$/.test(e.name)) out.push(p);
      if (e.isDirectory()) walk(p);
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return out;
}

function stripMetrics(file) {
  return fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => {
    const { step_s, tokens_per_s, gflops, mfu, time, ...rest } = JSON.parse(l);
    return JSON.stringify(rest);
  });
}

function sameBytes(a, b) {
  return fs.readFileSync(a).equals(fs.readFileSync(b));
}

// ---------------------------------------------------------------------------------------------------------------

async function drillTrain() {
  const corpus = path.join(work, 'corpus.txt');
  fs.writeFileSync(corpus, ['README.md', 'docs/data.md', 'docs/planning.md', 'docs/architecture.md'].map((f) => fs.readFileSync(path.join(REPO, f), 'utf8')).join('\n\n'));
  const data = path.join(work, 'train-data');
  runToEnd(['prepare', '--quiet', '--input', corpus, '--out', data, '--text-mode', 'blank-lines', '--val-fraction', '0.2', '--workers', '1']);
  const sets = [
    'model=cpu-tiny', `data=${data}`, 'seq=16', 'micro_batch=2', 'steps=8', 'warmup_steps=2', 'eval_every=4', 'eval_batches=2',
    'checkpoint_every=2', 'keep_checkpoints=2', 'sample_tokens=0', 'lr=3e-2', 'threads=1',
    'model.hidden_size=32', 'model.n_layer=2', 'model.n_head=2', 'model.n_kv_head=1', 'model.head_dim=16', 'model.ffn_hidden=64',
  ];
  const fresh = (dir) => ['train', '--quiet', '--run-dir', dir, '--set', ...sets];
  const resume = (dir) => ['train', '--quiet', '--resume', dir];
  const next = (dir) => (fs.existsSync(path.join(dir, 'train_config.json')) ? resume(dir) : fresh(dir));

  const ref = path.join(work, 'train-ref');
  const t0 = performance.now();
  runToEnd(fresh(ref));
  const span = performance.now() - t0;
  const finalOf = (dir) => path.join(dir, 'checkpoints', 'step-00000008');
  const stateOf = (dir) => {
    const st = JSON.parse(fs.readFileSync(path.join(finalOf(dir), 'state.json'), 'utf8'));
    delete st.config.run_dir;
    return JSON.stringify(st);
  };
  log(`train: uninterrupted run ${(span / 1000).toFixed(1)} s; ${TRIALS} trials`);
  const tally = { pass: 0, kills: 0, midCheckpoint: 0, resumes: 0 };
  for (let t = 1; t <= TRIALS; t++) {
    const dir = path.join(work, `train-${t}`);
    const notes = [];
    try {
      const kills = 1 + Math.floor(rand() * 3);
      for (let k = 0; k < kills; k++) {
        const argv = next(dir);
        if (argv.includes('--resume')) tally.resumes++;
        const duringSave = rand() < 1 / 3;
        const ckpts = path.join(dir, 'checkpoints');
        const trigger = duringSave
          ? (pid) => fs.existsSync(ckpts) && fs.readdirSync(ckpts).some((n) => n.endsWith(`.tmp-${pid}`))
          : null;
        const r = await startAndKill(argv, duringSave ? span * 2 : rand() * span * 1.1, trigger);
        if (r.killed) {
          tally.kills++;
          if (r.killed === 'trigger') tally.midCheckpoint++;
          notes.push(r.killed === 'trigger' ? 'killed mid-checkpoint' : 'killed');
        } else if (r.code !== 0) throw new Error(`a run exited ${r.code} on its own:\n${r.stderr}`);
        else {
          notes.push('finished before the kill');
          break;
        }
      }
      for (let guard = 0; guard < 3 && !fs.existsSync(path.join(finalOf(dir), 'state.json')); guard++) runToEnd(next(dir));
      runToEnd(next(dir)); // a resume of the finished run must say so and change nothing
      const problems = [];
      if (JSON.stringify(stripMetrics(path.join(dir, 'metrics.jsonl'))) !== JSON.stringify(stripMetrics(path.join(ref, 'metrics.jsonl'))))
        problems.push('metrics differ');
      for (const f of ['model.safetensors', 'optimizer.safetensors'])
        if (!sameBytes(path.join(finalOf(dir), f), path.join(finalOf(ref), f))) problems.push(`${f} differs`);
      if (stateOf(dir) !== stateOf(ref)) problems.push('state.json differs');
      const temps = temporariesUnder(dir);
      if (temps.length) problems.push(`temporaries left: ${temps.join(', ')}`);
      if (problems.length) throw new Error(problems.join('; '));
      tally.pass++;
      log(`  train trial ${t}: ok (${notes.join(', ')})`);
    } catch (e) {
      log(`  train trial ${t}: FAILED (${notes.join(', ')}): ${e.message}`);
    }
  }
  log(`train: ${tally.pass}/${TRIALS} trials passed; ${tally.kills} SIGKILLs, ${tally.midCheckpoint} of them while a checkpoint was being written; ${tally.resumes} resumed starts`);
  return tally.pass === TRIALS;
}

async function drillPrepare() {
  const input = path.join(work, 'prepare-in.jsonl');
  const words = ['alpha', 'beta', 'gamma', 'delta', 'über', '日本語', '🙂', 'x=1;', '\n', 'the', 'quick', 'brown', 'fox', '3.14'];
  const lines = [];
  for (let i = 0; i < 1500; i++) {
    let text = '';
    const n = 20 + ((i * 7919) % 300);
    for (let j = 0; j < n; j++) text += words[(i * 31 + j * 17) % words.length] + ' ';
    lines.push(JSON.stringify({ text }));
  }
  fs.writeFileSync(input, lines.join('\n') + '\n');
  const cmd = (dir) => ['prepare', '--quiet', '--input', input, '--out', dir, '--shard-tokens', '4096', '--workers', '2', '--val-fraction', '0.05'];
  const ref = path.join(work, 'prepare-ref');
  const t0 = performance.now();
  runToEnd(cmd(ref));
  const span = performance.now() - t0;
  const refFiles = fs.readdirSync(ref).sort();
  log(`prepare: uninterrupted run ${(span / 1000).toFixed(1)} s, ${refFiles.length} files; ${TRIALS} trials`);
  let pass = 0, kills = 0;
  for (let t = 1; t <= TRIALS; t++) {
    const dir = path.join(work, `prepare-${t}`);
    const notes = [];
    try {
      const n = 1 + Math.floor(rand() * 3);
      for (let k = 0; k < n; k++) {
        const r = await startAndKill(cmd(dir), rand() * span * 1.1, null);
        if (r.killed) {
          kills++;
          notes.push('killed');
        } else if (r.code !== 0) throw new Error(`a run exited ${r.code} on its own:\n${r.stderr}`);
        else {
          notes.push('finished before the kill');
          break;
        }
      }
      runToEnd(cmd(dir));
      const files = fs.readdirSync(dir).sort();
      const problems = [];
      if (JSON.stringify(files) !== JSON.stringify(refFiles)) problems.push(`files differ: ${files.filter((f) => !refFiles.includes(f)).join(', ') || 'some missing'}`);
      for (const f of refFiles) if (files.includes(f) && !sameBytes(path.join(dir, f), path.join(ref, f))) problems.push(`${f} differs`);
      if (problems.length) throw new Error(problems.join('; '));
      pass++;
      log(`  prepare trial ${t}: ok (${notes.join(', ')})`);
    } catch (e) {
      log(`  prepare trial ${t}: FAILED (${notes.join(', ')}): ${e.message}`);
    }
  }
  log(`prepare: ${pass}/${TRIALS} trials passed; ${kills} SIGKILLs`);
  return pass === TRIALS;
}

log(`lmforge kill drill: seed ${SEED}, work directory ${work}`);
let ok = true;
try {
  if (ONLY !== 'prepare') ok = (await drillTrain()) && ok;
  if (ONLY !== 'train') ok = (await drillPrepare()) && ok;
} finally {
  if (!KEEP) fs.rmSync(work, { recursive: true, force: true });
}
process.exitCode = ok ? 0 : 1;
