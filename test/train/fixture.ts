/**
 * A tiny prepared corpus and a tiny model config for tests that train: the repository's own docs, prepared once
 * per machine into a cache directory named after the text (so several test files share one preparation).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepare } from '../../src/data/prepare.js';
import { loadTrainConfig, type TrainConfig } from '../../src/config/train.js';
import { resolveModelConfig, Trainer } from '../../src/train/trainer.js';
import { REPO_ROOT } from '../helpers.js';

export async function tinyData(): Promise<string> {
  const text = ['README.md', 'docs/data.md', 'docs/planning.md']
    .filter((f) => existsSync(join(REPO_ROOT, f)))
    .map((f) => readFileSync(join(REPO_ROOT, f), 'utf8'))
    .join('\n\n');
  const key = createHash('sha256').update(text).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), `lmforge-test-corpus-${key}`);
  if (existsSync(join(dir, 'manifest.json'))) return dir;
  const work = mkdtempSync(join(tmpdir(), 'lmforge-test-corpus-work-'));
  writeFileSync(join(work, 'corpus.txt'), text);
  await prepare({ inputs: [join(work, 'corpus.txt')], out: join(work, 'data'), valFraction: 0.2, workers: 1, textMode: 'blank-lines', progress: false, log: () => {} });
  try {
    renameSync(join(work, 'data'), dir);
  } catch {
    // another test file won the race: its copy is the same
  }
  rmSync(work, { recursive: true, force: true });
  return dir;
}

/** The `--set` list of a 2-layer, 32-wide model on `data` (override any key by adding it again). */
export function tinySets(data: string, extra: string[] = []): string[] {
  return [
    'model=cpu-tiny', `data=${data}`, 'seq=16', 'micro_batch=2', 'grad_accum=1', 'steps=6', 'warmup_steps=2',
    'eval_every=0', 'eval_batches=1', 'checkpoint_every=2', 'keep_checkpoints=2', 'sample_tokens=0', 'lr=3e-2',
    'model.hidden_size=32', 'model.n_layer=1', 'model.n_head=2', 'model.n_kv_head=1', 'model.head_dim=16', 'model.ffn_hidden=64',
    ...extra,
  ];
}

export function tinyConfig(runDir: string, data: string, extra: string[] = []): TrainConfig {
  const tc = loadTrainConfig(undefined, tinySets(data, extra));
  tc.run_dir = runDir;
  return tc;
}

/** Trains `tc` in-process (resuming when asked); `stopAfter` throws after that step, as a kill would stop it. */
export async function train(tc: TrainConfig, resume: boolean, stopAfter?: number): Promise<Trainer> {
  const t = new Trainer(tc, resolveModelConfig(tc), tc.run_dir);
  await t.setup(resume);
  await t.run({
    afterStep: (step) => {
      if (stopAfter !== undefined && step === stopAfter) throw new Error('simulated kill');
    },
  });
  return t;
}
