/**
 * The training loop: micro-batches x gradient accumulation, LR schedule, AdamW with clipping, NaN/Inf guard,
 * periodic evaluation and atomic checkpoints, metrics to metrics.jsonl, progress on the terminal, bit-exact resume.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Backend } from '../engine/backend.js';
import { createBackend } from '../engine/index.js';
import type { ModelConfig } from '../config/model.js';
import { validateModelConfig } from '../config/schema.js';
import type { TrainConfig } from '../config/train.js';
import { Decoder } from '../model/decoder.js';
import { initWeights } from '../model/init.js';
import { loadWeights } from '../model/weights.js';
import { flopsPerToken } from '../model/count.js';
import { clipCoefficient } from './adamw.js';
import { createProcessGroup, type ProcessGroup } from '../parallel/index.js';
import { agreeOnString } from '../parallel/group.js';
import { ReplicatedAdamW, ZeroAdamW, type TrainOptimizer } from './optimizer.js';
import type { LoaderState } from '../data/loader.js';
import { Rng } from '../model/rng.js';
import { loadCheckpoint, resumeCheckpoint, saveCheckpoint, type TrainState } from './checkpoint.js';
import { lrAt } from './schedule.js';
import { MetricsLog } from './metrics.js';
import { deviceFromName, resolvePeak } from '../plan/devices.js';
import { openLoader, datasetInfo, type DataLoader as Loader } from '../data/loader.js';
import { ensureBundledCorpus } from '../data/corpus.js';
import { loadModelSpec, openModelSource } from '../io/model-dir.js';
import { checkNewRunDir, cleanRunDir, RUN_FILES, setAsideLaterCheckpoints } from '../io/run-dir.js';
import { writeFileAtomic } from '../files/atomic.js';
import { divergenceMessage, HealthTracker, lastGoodCheckpoint } from './health.js';

export interface TrainResult {
  runDir: string;
  steps: number;
  firstValLoss: number | null;
  lastValLoss: number | null;
  lastTrainLoss: number;
}

/** One optimizer step's figures, as the progress display shows them. */
export interface StepReport {
  /** Steps completed. */
  step: number;
  loss: number;
  lr: number;
  tokensPerS: number;
  /** In [0, 1], when the device's peak is known. */
  mfu?: number;
  /** Achieved GFLOP/s, shown when mfu is absent. */
  gflops?: number;
}

/** How a caller follows a run (the CLI draws a progress bar from these); a run without hooks prints nothing. */
export interface TrainHooks {
  /** Called after each optimizer step (tests use it to stop a run midway). */
  afterStep?(step: number, loss: number): void;
  onStep?(report: StepReport): void;
  /** Lines worth showing a person: evaluations, skipped steps. */
  onLog?(line: string): void;
  /** The loop ended, normally or by an error. */
  onEnd?(): void;
}

/** Data parallelism: the process group (default: from the launcher's environment, world size 1 without one). */
export interface DistOptions {
  group?: ProcessGroup;
  /** Shard the AdamW moments over the ranks (ZeRO-1). */
  zero1?: boolean;
}

/** Resolves `model` + `model_overrides` to a validated model config. */
export function resolveModelConfig(tc: TrainConfig): ModelConfig {
  const base = loadModelSpec(tc.model).config;
  if (Object.keys(tc.model_overrides).length === 0) return base;
  return validateModelConfig({ ...base, ...tc.model_overrides }, `${tc.model} with model overrides`);
}

export class Trainer {
  readonly be: Backend;
  readonly model: Decoder;
  readonly opt: TrainOptimizer;
  readonly group: ProcessGroup;
  /** Engine memory the optimizer allocated on this rank (bytes). */
  readonly optimizerBytes: number;
  readonly runDir: string;
  private train!: Loader;
  private val!: Loader;
  private rng: Rng;
  private step = 0;
  private tokensSeen = 0;
  private metrics!: Pick<MetricsLog, 'train' | 'eval' | 'event' | 'close'>;
  private bytesPerToken = 0;
  /** Loader state at the start of the validation split: every evaluation reads the same batches. */
  private valStart: unknown = undefined;
  /** Whether the loss is behaving (train/health.ts); saved in each checkpoint. */
  private health = new HealthTracker();

  constructor(readonly tc: TrainConfig, readonly modelCfg: ModelConfig, runDir: string, dist: DistOptions = {}) {
    this.be = createBackend(tc.device);
    this.group = dist.group ?? createProcessGroup(this.be);
    // Ranks on one host share its cores; rank 0's run directory (it embeds a timestamp) is everyone's.
    if (tc.threads > 0) this.be.setThreads(tc.threads);
    else if (this.group.localSize > 1) this.be.setThreads(Math.max(1, Math.floor(availableParallelism() / this.group.localSize)));
    this.runDir = agreeOnString(this.group, runDir);
    if (tc.seq > modelCfg.context_length)
      throw new Error(`seq ${tc.seq} exceeds the model's context_length ${modelCfg.context_length}; lower seq or raise model.context_length`);
    this.model = new Decoder(this.be, modelCfg);
    const adam = { lr: tc.lr, beta1: tc.beta1, beta2: tc.beta2, eps: tc.eps, weightDecay: tc.weight_decay, clip: tc.clip };
    const allocatedBefore = this.be.allocatedBytes();
    this.opt = dist.zero1 ? new ZeroAdamW(this.be, this.model, this.group, adam) : new ReplicatedAdamW(this.be, this.model, this.group, adam);
    // Measured by the engine's allocation counter: m, v and (ZeRO-1) the reduced-gradient slice.
    this.optimizerBytes = this.be.allocatedBytes() - allocatedBefore;
    this.rng = new Rng(tc.seed);
  }

  /**
   * Opens data, then initialises from scratch, from `init_from`, or (resume) from the run's latest checkpoint or
   * the one saved at `fromStep`. A resumed run without any checkpoint starts again from step 0.
   */
  async setup(resume: boolean, opts: { fromStep?: number } = {}): Promise<void> {
    const tc = this.tc;
    const { group } = this;
    if (group.rank === 0) {
      if (resume) cleanRunDir(this.runDir);
      else checkNewRunDir(this.runDir);
    }
    // Rank 0 prepares the bundled corpus once; the others wait, then find it ready.
    if (tc.data === 'bundled' && group.rank === 0) await ensureBundledCorpus();
    group.barrier();
    const dataDir = tc.data === 'bundled' ? await ensureBundledCorpus() : tc.data;
    const info = datasetInfo(dataDir);
    if (info.vocabSize > this.modelCfg.vocab_size)
      throw new Error(`data in ${dataDir} was tokenized with a vocabulary of ${info.vocabSize} but the model has ${this.modelCfg.vocab_size} rows; use a model with vocab_size >= ${info.vocabSize}`);
    this.bytesPerToken = info.bytesPerToken.val;
    const common = { dir: dataDir, seq: tc.seq, batch: tc.micro_batch, rank: group.rank, worldSize: group.size };
    this.train = await openLoader({ ...common, split: 'train', seed: tc.seed, order: 'random' });
    this.val = await openLoader({ ...common, split: 'val', seed: tc.seed, order: 'sequential' });
    mkdirSync(this.runDir, { recursive: true });
    const ckpt = resume ? resumeCheckpoint(this.runDir, opts.fromStep) : null;
    if (ckpt) {
      const st: TrainState = loadCheckpoint(ckpt, this.model, this.opt);
      this.step = st.step;
      this.tokensSeen = st.tokensSeen;
      this.train.restore(this.loaderStateFor(st));
      this.rng = new Rng(st.rng);
      this.health = HealthTracker.restore(st.health);
      if (opts.fromStep !== undefined && group.rank === 0) setAsideLaterCheckpoints(this.runDir, st.step);
    } else if (tc.init_from) {
      const src = openModelSource(tc.init_from);
      try {
        loadWeights(this.model, src.tensors, tc.init_from);
      } finally {
        src.close();
      }
    } else {
      initWeights(this.model, { seed: tc.seed, scaledResidual: tc.scaled_residual_init });
    }
    // Every rank computed the same start; rank 0's copy makes that a guarantee.
    if (group.size > 1) group.broadcast(this.model.paramPtr(0), this.model.layout.total, 0);
    if (group.rank === 0) {
      // The configs first: a run directory without train_config.json holds nothing worth keeping.
      writeFileAtomic(join(this.runDir, RUN_FILES.trainConfig), JSON.stringify(tc, null, 2) + '\n');
      writeFileAtomic(join(this.runDir, RUN_FILES.modelConfig), JSON.stringify(this.modelCfg, null, 2) + '\n');
      // A resume without a checkpoint starts over: the records of the killed start go (resumeStep -1 keeps none).
      this.metrics = new MetricsLog(this.runDir, ckpt ? { resumeStep: this.step } : resume ? { resumeStep: -1 } : {});
    } else {
      this.metrics = { train() {}, eval() {}, event() {}, close() {} };
    }
  }

  /**
   * This rank's loader position from a checkpoint. Same world size: the saved step (bit-exact resume). Another
   * world size: the global position (windows consumed by all ranks) mapped onto the new split, with a warning.
   */
  private loaderStateFor(st: TrainState): LoaderState {
    const saved = st.loader as LoaderState;
    const { rank, size } = this.group;
    const savedWorld = st.worldSize ?? saved.worldSize ?? 1;
    if (savedWorld === size && saved.batch === this.tc.micro_batch) return { ...saved, rank, worldSize: size };
    const consumed = saved.step * saved.batch * savedWorld;
    const step = Math.floor(consumed / (this.tc.micro_batch * size));
    if (rank === 0)
      process.stderr.write(
        `lmforge train: warning: the checkpoint was written by ${savedWorld} rank(s) x micro-batch ${saved.batch}, this run has ` +
          `${size} x ${this.tc.micro_batch}; data continues at window ${step * this.tc.micro_batch * size} of the shuffled order ` +
          `(saved position ${consumed}), and results match an uninterrupted run only up to floating-point reassociation\n`,
      );
    return { ...saved, rank, worldSize: size, batch: this.tc.micro_batch, step };
  }

  /** Mean loss over `eval_batches` validation batches (the validation order restarts each time). */
  evaluate(): number {
    const tc = this.tc;
    this.val.restore(this.valStart as never);
    const { micro_batch: batch, seq } = tc;
    let count = 0;
    this.model.resetLoss();
    for (let i = 0; i < tc.eval_batches; i++) {
      const { ids, targets } = splitWindows(this.val.next().tokens, batch, seq);
      this.model.run(ids, targets, { batch, seq, backward: false });
      count += ids.length;
    }
    const totals = Float64Array.of(this.model.takeLoss(), count);
    this.group.allReduceHost(totals, 'sum');
    return totals[0]! / totals[1]!;
  }

  async run(hooks: TrainHooks = {}): Promise<TrainResult> {
    const tc = this.tc;
    const { model, opt } = this;
    this.valStart = this.val.state();
    const { group } = this;
    // Global batch: micro-batch x accumulation x ranks.
    const tokensPerStep = tc.micro_batch * tc.seq * tc.grad_accum * group.size;
    const flopsTok = flopsPerToken(this.modelCfg, tc.seq).total;
    const peak = resolvePeak(tc.peak_flops > 0 ? tc.peak_flops : undefined, this.be.name === 'cuda' ? deviceFromName(this.be.describe()) : undefined) ?? 0;
    let firstVal: number | null = null;
    let lastVal: number | null = null;
    let lastLoss = NaN;
    let bad = 0;
    const evalNow = (): void => {
      const loss = this.evaluate();
      const bpb = this.bytesPerToken > 0 ? loss / Math.LN2 / this.bytesPerToken : null;
      this.metrics.eval({ step: this.step, loss, ppl: Math.exp(loss), bpb: bpb ?? undefined });
      hooks.onLog?.(`step ${this.step}: val loss ${loss.toFixed(4)}, ppl ${Math.exp(loss).toFixed(2)}${bpb !== null ? `, ${bpb.toFixed(3)} bits/byte` : ''}`);
      if (firstVal === null) firstVal = loss;
      lastVal = loss;
    };
    try {
      // A resumed run that already reached `steps` is complete: nothing to add (no second final eval or checkpoint).
      if (this.step > 0 && this.step >= tc.steps) {
        this.metrics.close();
        return { runDir: this.runDir, steps: this.step, firstValLoss: null, lastValLoss: null, lastTrainLoss: NaN };
      }
      if (this.step === 0) evalNow();
      while (this.step < tc.steps) {
        const t0 = performance.now();
        const lr = lrAt(this.step, {
          schedule: tc.schedule, lr: tc.lr, min_lr: tc.min_lr, warmup_steps: tc.warmup_steps, total_steps: tc.steps, decay_fraction: tc.decay_fraction,
        });
        model.zeroGrads();
        model.resetLoss();
        // Gradients of the loss sum scaled by 1 / (global token count): summed over ranks they are the global mean's.
        const count = tokensPerStep;
        for (let micro = 0; micro < tc.grad_accum; micro++) {
          const { ids, targets } = splitWindows(this.train.next().tokens, tc.micro_batch, tc.seq);
          model.run(ids, targets, { batch: tc.micro_batch, seq: tc.seq, backward: true, gradScale: 1 / count });
        }
        const lossSum = Float64Array.of(model.takeLoss());
        group.allReduceHost(lossSum, 'sum');
        const loss = lossSum[0]! / count;
        const norm = opt.reduceGradients();
        this.step += 1;
        this.tokensSeen += tokensPerStep;
        this.health.observe(this.step, loss, norm);
        if (!Number.isFinite(loss) || !Number.isFinite(norm)) {
          bad += 1;
          this.metrics.event(this.step, 'skipped_step', { loss: String(loss), grad_norm: String(norm) });
          hooks.onLog?.(`step ${this.step}: loss ${loss} / grad norm ${norm} is not finite; update skipped (${bad}/${tc.max_bad_steps})`);
          if (bad >= tc.max_bad_steps) throw new Error(divergenceMessage(this.runDir, bad, this.health.troubleSince ?? this.step));
          continue;
        }
        bad = 0;
        opt.update(lr, clipCoefficient(norm, tc.clip));
        lastLoss = loss;
        const dt = (performance.now() - t0) / 1000;
        const tokensPerS = tokensPerStep / dt;
        const achieved = tokensPerS * flopsTok;
        const mfu = peak > 0 ? achieved / peak : null;
        if (this.step % tc.log_every === 0 || this.step === tc.steps)
          this.metrics.train({
            step: this.step, loss, lr, grad_norm: norm, tokens: this.tokensSeen, step_s: dt, tokens_per_s: tokensPerS,
            gflops: achieved / 1e9, mfu: mfu ?? undefined,
          });
        hooks.onStep?.({ step: this.step, loss, lr, tokensPerS, mfu: mfu ?? undefined, gflops: achieved / 1e9 });
        hooks.afterStep?.(this.step, loss);
        if (tc.eval_every > 0 && this.step % tc.eval_every === 0 && this.step !== tc.steps) evalNow();
        if (tc.checkpoint_every > 0 && this.step % tc.checkpoint_every === 0 && this.step !== tc.steps) this.checkpoint();
      }
      if (this.step === tc.steps) {
        evalNow();
        this.checkpoint();
      }
    } finally {
      hooks.onEnd?.();
    }
    this.metrics.close();
    return { runDir: this.runDir, steps: this.step, firstValLoss: firstVal, lastValLoss: lastVal, lastTrainLoss: lastLoss };
  }

  /** Collective (ZeRO-1 gathers the moments); rank 0 writes. Returns the checkpoint directory. */
  checkpoint(): string {
    const moments = this.opt.exportMoments();
    if (this.group.rank !== 0 || !moments) return '';
    return saveCheckpoint(this.runDir, this.model, moments, {
      step: this.step,
      optimizerStep: this.opt.step,
      loader: this.train.state(),
      rng: this.rng.state(),
      tokensSeen: this.tokensSeen,
      config: this.tc,
      worldSize: this.group.size,
      zero1: this.opt instanceof ZeroAdamW,
      health: this.health.record(),
    }, this.tc.keep_checkpoints, this.health.troubleSince !== null ? lastGoodCheckpoint(this.runDir, this.health.troubleSince) : null);
  }

  dispose(): void {
    this.train?.close();
    this.val?.close();
    this.opt.dispose();
    this.model.dispose();
  }
}

/** Windows of seq+1 tokens -> inputs (first seq) and targets (last seq), row by row. */
export function splitWindows(tokens: Int32Array, batch: number, seq: number): { ids: Int32Array; targets: Int32Array } {
  if (tokens.length !== batch * (seq + 1)) throw new Error(`internal: loader returned ${tokens.length} tokens, expected ${batch * (seq + 1)}`);
  const ids = new Int32Array(batch * seq);
  const targets = new Int32Array(batch * seq);
  for (let b = 0; b < batch; b++) {
    const row = tokens.subarray(b * (seq + 1), (b + 1) * (seq + 1));
    ids.set(row.subarray(0, seq), b * seq);
    targets.set(row.subarray(1), b * seq);
  }
  return { ids, targets };
}

export function defaultRunDir(tc: TrainConfig): string {
  const name = tc.model.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '').slice(-40) || 'model';
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  let dir = join('runs', `${name}-${stamp}`);
  for (let i = 2; existsSync(dir); i++) dir = join('runs', `${name}-${stamp}-${i}`);
  return dir;
}
