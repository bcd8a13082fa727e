/**
 * The training loop: micro-batches x gradient accumulation, LR schedule, AdamW with clipping, NaN/Inf guard,
 * periodic evaluation and atomic checkpoints, metrics to metrics.jsonl, progress on the terminal, bit-exact resume.
 * A run is a sequence of stages (stage-schedule.ts; one unless the config has `stages:`), each with its own data
 * mixture, sequence length, batch shape, LR segment, RoPE base and masking; weights and (unless a stage resets
 * it) optimizer state carry over. Every stage ends with an evaluation and a checkpoint.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Backend, PendingRead } from '../engine/backend.js';
import { createBackend } from '../engine/index.js';
import type { ModelConfig } from '../config/model.js';
import { validateModelConfig } from '../config/schema.js';
import type { TrainConfig } from '../config/train.js';
import { Decoder } from '../model/decoder.js';
import { initWeights } from '../model/init.js';
import { loadWeights } from '../model/weights.js';
import { flopsPerToken } from '../model/count.js';
import { createProcessGroup, type ProcessGroup } from '../parallel/index.js';
import { agreeOnString } from '../parallel/group.js';
import { ReplicatedAdamW, ZeroAdamW, type TrainOptimizer } from './optimizer.js';
import { Rng } from '../model/rng.js';
import { loadCheckpoint, resumeCheckpoint, saveCheckpoint, type TrainState } from './checkpoint.js';
import { MetricsLog, type MetricValue } from './metrics.js';
import { deviceFromName, resolvePeak } from '../plan/devices.js';
import { datasetInfo } from '../data/loader.js';
import { DataExhaustedError, openMixture, type MixtureLoader, type MixtureState } from '../data/mixture.js';
import { documentSegments } from '../data/documents.js';
import { resolveDataDir, isBundledData } from '../data/corpus.js';
import { describeData, sourceName } from '../config/stages.js';
import { StageSchedule, type Stage } from './stage-schedule.js';
import { loadModelSpec, openModelSource } from '../io/model-dir.js';
import { checkNewRunDir, cleanRunDir, RUN_FILES, setAsideLaterCheckpoints } from '../io/run-dir.js';
import { writeFileAtomic } from '../files/atomic.js';
import { divergenceMessage, HealthTracker, lastGoodCheckpoint } from './health.js';
import { TaskEvaluator } from '../eval/in-training.js';

export interface TrainResult {
  runDir: string;
  steps: number;
  firstValLoss: number | null;
  lastValLoss: number | null;
  lastTrainLoss: number;
  /** Why the run ended before its last step (on_exhausted: stop), if it did. */
  stoppedEarly?: string;
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
  /** step -> stage, lr; the stages' lengths are resolved at this world size. */
  readonly schedule: StageSchedule;
  /** The stage whose data is open (null before the first). */
  private stage: Stage | null = null;
  private train: MixtureLoader | null = null;
  private val: MixtureLoader | null = null;
  /** Loader state at the start of the validation split: every evaluation reads the same batches. */
  private valStart: MixtureState | null = null;
  /** A checkpoint's data position, applied when its stage is entered. */
  private pendingData: { stage: number; state: MixtureState } | null = null;
  /** Prepared directory of each data path (bundled names resolved). */
  private dataDirs = new Map<string, string>();
  private eotId = -1;
  private rng: Rng;
  private step = 0;
  private tokensSeen = 0;
  private metrics!: Pick<MetricsLog, 'train' | 'eval' | 'event' | 'close'>;
  private bytesPerToken = 0;
  /** Downstream tasks (eval_tasks), scored on rank 0. */
  private tasks: TaskEvaluator | null = null;
  /** Whether the loss is behaving (train/health.ts); saved in each checkpoint. */
  private health = new HealthTracker();

  constructor(readonly tc: TrainConfig, readonly modelCfg: ModelConfig, runDir: string, dist: DistOptions = {}) {
    this.be = createBackend(tc.device);
    this.group = dist.group ?? createProcessGroup(this.be);
    // Ranks on one host share its cores; rank 0's run directory (it embeds a timestamp) is everyone's.
    if (tc.threads > 0) this.be.setThreads(tc.threads);
    else if (this.group.localSize > 1) this.be.setThreads(Math.max(1, Math.floor(availableParallelism() / this.group.localSize)));
    this.runDir = agreeOnString(this.group, runDir);
    this.schedule = StageSchedule.fromConfig(tc, modelCfg, this.group.size);
    // With stages the run's length is theirs (the saved config records it).
    tc.steps = this.schedule.totalSteps;
    this.model = new Decoder(this.be, modelCfg);
    this.model.setRecompute(tc.recompute);
    const adam = { lr: tc.lr, beta1: tc.beta1, beta2: tc.beta2, eps: tc.eps, weightDecay: tc.weight_decay, clip: tc.clip };
    const allocatedBefore = this.be.allocatedBytes();
    this.opt = dist.zero1 ? new ZeroAdamW(this.be, this.model, this.group, adam) : new ReplicatedAdamW(this.be, this.model, this.group, adam);
    // Measured by the engine's allocation counter: m, v and (ZeRO-1) the reduced-gradient slice.
    this.optimizerBytes = this.be.allocatedBytes() - allocatedBefore;
    this.rng = new Rng(tc.seed);
  }

  /**
   * Prepares data, then initialises from scratch, from `init_from`, or (resume) from the run's latest checkpoint or
   * the one saved at `fromStep`. A resumed run without any checkpoint starts again from step 0. A new run refuses a
   * directory that holds anything, unless `ownedDir` says the caller made it for this run (a sweep's variant).
   */
  async setup(resume: boolean, opts: { fromStep?: number; ownedDir?: boolean } = {}): Promise<void> {
    const tc = this.tc;
    const { group } = this;
    if (group.rank === 0) {
      if (resume || opts.ownedDir) cleanRunDir(this.runDir);
      else checkNewRunDir(this.runDir);
    }
    const paths = [...new Set(this.schedule.stages.flatMap((st) => st.data.map((d) => d.path)))];
    // Rank 0 prepares the bundled corpus once; the others wait, then find it ready.
    if (group.rank === 0) for (const p of paths) if (isBundledData(p)) await resolveDataDir(p);
    group.barrier();
    for (const p of paths) {
      const dir = await resolveDataDir(p);
      const info = datasetInfo(dir);
      if (info.vocabSize > this.modelCfg.vocab_size)
        throw new Error(`data in ${dir} was tokenized with a vocabulary of ${info.vocabSize} but the model has ${this.modelCfg.vocab_size} rows; use a model with vocab_size >= ${info.vocabSize}`);
      if (this.eotId >= 0 && info.eotId !== this.eotId)
        throw new Error(`data in ${dir} separates documents with token ${info.eotId} but other data of this run with ${this.eotId}; prepare all datasets with the same tokenizer`);
      this.eotId = info.eotId;
      this.dataDirs.set(p, dir);
      if (tc.eval_tasks.length > 0 && group.rank === 0 && !this.tasks)
        this.tasks = await TaskEvaluator.open(tc.eval_tasks, {
          every: tc.eval_tasks_every, batchTokens: tc.micro_batch * tc.seq, tokenizer: tc.eval_tokenizer, dataTokenizerSha256: info.tokenizerSha256,
        });
    }
    mkdirSync(this.runDir, { recursive: true });
    const ckpt = resume ? resumeCheckpoint(this.runDir, opts.fromStep) : null;
    if (ckpt) {
      const st: TrainState = loadCheckpoint(ckpt, this.model, this.opt);
      this.step = st.step;
      this.tokensSeen = st.tokensSeen;
      // Checkpoints before stages existed hold one loader's state, of the only stage.
      this.pendingData = { stage: st.stage ?? 0, state: st.loader as MixtureState };
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
    if (group.size > 1) this.model.writeParams((p) => group.broadcast(p, this.model.layout.total, 0));
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

  /** The stage now running (after setup and the first step's entry). */
  get currentStage(): Stage | null {
    return this.stage;
  }

  /**
   * Makes `st` the running stage: opens its data (at a checkpoint's position when resuming inside it), sets its
   * RoPE base, and at its first step resets the optimizer if it asks. A no-op when it already runs.
   */
  private async enterStage(st: Stage, hooks: TrainHooks): Promise<Stage> {
    if (this.stage?.index === st.index) return st;
    this.train?.close();
    this.val?.close();
    const { rank, size } = this.group;
    const sources = st.data.map((d) => ({ name: sourceName(d), dir: this.dataDirs.get(d.path)!, weight: d.weight }));
    const common = { sources, seq: st.seq, batch: st.microBatch, seed: st.seed, rank, worldSize: size };
    this.train = await openMixture({ ...common, split: 'train', order: 'random', onExhausted: st.onExhausted });
    // Validation mixes the sources that have a validation split long enough for one window.
    const valSources = sources.filter((s) => datasetInfo(s.dir).tokens.val >= st.seq + 1);
    if (valSources.length === 0)
      throw new Error(`stage ${st.index + 1} (${st.name}): no dataset of ${describeData(st.data)} has ${st.seq + 1} validation tokens; prepare one with a larger --val-fraction or lower seq`);
    this.val = await openMixture({ ...common, sources: valSources, split: 'val', order: 'sequential' });
    this.valStart = this.val.state();
    const pending = this.pendingData;
    this.pendingData = null;
    if (pending && pending.stage === st.index) {
      const { sameShape } = this.train.restore(pending.state);
      if (!sameShape && rank === 0)
        process.stderr.write(
          `lmforge train: warning: the checkpoint was written by ${pending.state.worldSize} rank(s) x micro-batch ${pending.state.batch}, this run has ` +
            `${size} x ${st.microBatch}; data continues at the same global position (row ${pending.state.slots}), and results match an ` +
            `uninterrupted run only up to floating-point reassociation\n`,
        );
    }
    if (this.model.cfg.rope_theta !== st.ropeTheta) this.model.setRopeTheta(st.ropeTheta);
    this.model.setRecompute(st.recompute);
    if (st.resetOptimizer && this.step === st.start && st.index > 0) {
      const zeros = new Float32Array(this.model.layout.total);
      this.opt.importMoments(zeros, zeros, 0);
    }
    const w = valSources.reduce((a, d) => a + d.weight, 0);
    this.bytesPerToken = valSources.reduce((a, d) => a + (d.weight / w) * datasetInfo(d.dir).bytesPerToken.val, 0);
    this.stage = st;
    if (this.schedule.staged)
      hooks.onLog?.(
        `stage ${st.index + 1}/${this.schedule.stages.length} (${st.name}) from step ${this.step}: seq ${st.seq}, ` +
          `${st.microBatch} x ${st.gradAccum} sequences per step, data ${describeData(st.data)}, rope_theta ${st.ropeTheta}, ` +
          `lr ${st.lr} ${st.schedule}${st.resetOptimizer ? ', optimizer reset' : ''}${st.attentionMask === 'document' ? ', document masking' : ''}` +
          `${st.recompute !== 'none' ? `, recompute ${st.recompute}` : ''}`,
      );
    this.warnIfRepeated(st, hooks);
    return st;
  }

  /** Says up front when a stage will read a dataset more than once. */
  private warnIfRepeated(st: Stage, hooks: TrainHooks): void {
    if (!this.train) return;
    const rows = st.steps * st.gradAccum * st.microBatch * this.group.size;
    const w = st.data.reduce((a, d) => a + d.weight, 0);
    this.train.windows.forEach((windows, i) => {
      const epochs = (rows * st.data[i]!.weight) / w / windows;
      if (epochs > 1)
        hooks.onLog?.(
          `warning: stage ${st.index + 1} (${st.name}) will read '${this.train!.sources[i]!.name}' about ${epochs.toFixed(1)} times ` +
            `(${windows} windows of ${st.seq + 1} tokens for a share of ${Math.round((rows * st.data[i]!.weight) / w)})` +
            (st.onExhausted === 'stop' ? '; on_exhausted is stop, so the run will end when it is used up' : ''),
        );
    });
  }

  /** Mean loss over `eval_batches` validation batches of the running stage (the validation order restarts each time). */
  evaluate(): number {
    const st = this.stage!;
    const val = this.val!;
    val.restore(this.valStart!);
    let count = 0;
    this.model.resetLoss();
    for (let i = 0; i < this.tc.eval_batches; i++) {
      const { ids, targets } = splitWindows(val.next().tokens, st.microBatch, st.seq);
      this.model.run(ids, targets, { batch: st.microBatch, seq: st.seq, backward: false, ...this.documents(st, ids) });
      count += ids.length;
    }
    const totals = Float64Array.of(this.model.takeLoss(), count);
    this.group.allReduceHost(totals, 'sum');
    return totals[0]! / totals[1]!;
  }

  /** Document boundaries and positions of a micro-batch, where the stage asks for them. */
  private documents(st: Stage, ids: Int32Array): { segments?: Int32Array; positionIds?: Int32Array } {
    if (st.attentionMask !== 'document' && st.positions !== 'document') return {};
    const d = documentSegments(ids, st.microBatch, st.seq, this.eotId);
    return {
      ...(st.attentionMask === 'document' ? { segments: d.cuSeqlens } : {}),
      ...(st.positions === 'document' ? { positionIds: d.positions } : {}),
    };
  }

  /** The fields every metrics record of a staged run carries. */
  private stageFields(): Record<string, MetricValue> {
    return this.schedule.staged && this.stage ? { stage: this.stage.index + 1 } : {};
  }

  async run(hooks: TrainHooks = {}): Promise<TrainResult> {
    const tc = this.tc;
    const { model, opt, schedule } = this;
    const total = schedule.totalSteps;
    const peak = resolvePeak(tc.peak_flops > 0 ? tc.peak_flops : undefined, this.be.name === 'cuda' ? deviceFromName(this.be.describe()) : undefined) ?? 0;
    let firstVal: number | null = null;
    let lastVal: number | null = null;
    let lastLoss = NaN;
    let bad = 0;
    let stoppedEarly: string | undefined;
    const evalNow = (): void => {
      const loss = this.evaluate();
      const bpb = this.bytesPerToken > 0 ? loss / Math.LN2 / this.bytesPerToken : null;
      this.metrics.eval({ step: this.step, ...this.stageFields(), loss, ppl: Math.exp(loss), bpb: bpb ?? undefined });
      hooks.onLog?.(`step ${this.step}: val loss ${loss.toFixed(4)}, ppl ${Math.exp(loss).toFixed(2)}${bpb !== null ? `, ${bpb.toFixed(3)} bits/byte` : ''}`);
      if (firstVal === null) firstVal = loss;
      lastVal = loss;
    };
    const tasksNow = (final: boolean): void => {
      if (!this.tasks?.due(this.step, final)) return;
      for (const t of this.tasks.run(model, this.step)) {
        this.metrics.eval(t.record);
        hooks.onLog?.(t.line);
      }
    };
    // A step whose loss and gradient norm are still on the engine, and how to account for it.
    interface PendingStep {
      read: PendingRead;
      count: number;
      lr: number;
      st: Stage;
      t0: number;
    }
    let pending: PendingStep | null = null;
    const lagged = this.be.name !== 'cpu';
    // Reads the pending step's numbers (after its own work only) and logs it; false when it was not finite (the
    // engine skipped its update). this.step and tokensSeen are that step's here.
    const finish = (p: PendingStep): boolean => {
      const [lossSum, squares] = p.read.wait();
      const loss = lossSum! / p.count;
      const norm = Math.sqrt(squares!);
      this.health.observe(this.step, loss, norm);
      if (!Number.isFinite(loss) || !Number.isFinite(norm)) {
        bad += 1;
        opt.undoStep();
        this.metrics.event(this.step, 'skipped_step', { loss: String(loss), grad_norm: String(norm) });
        hooks.onLog?.(`step ${this.step}: loss ${loss} / grad norm ${norm} is not finite; update skipped (${bad}/${tc.max_bad_steps})`);
        if (bad >= tc.max_bad_steps) throw new Error(divergenceMessage(this.runDir, bad, this.health.troubleSince ?? this.step));
        return false;
      }
      bad = 0;
      lastLoss = loss;
      const { st, lr } = p;
      const dt = (performance.now() - p.t0) / 1000;
      const tokensPerS = st.tokensPerStep / dt;
      const achieved = tokensPerS * flopsPerToken(model.cfg, st.seq).total;
      const mfu = peak > 0 ? achieved / peak : null;
      if (this.step % tc.log_every === 0 || this.step === st.end)
        this.metrics.train({
          step: this.step, ...this.stageFields(), loss, lr, grad_norm: norm, tokens: this.tokensSeen, step_s: dt, tokens_per_s: tokensPerS,
          gflops: achieved / 1e9, mfu: mfu ?? undefined, ...this.mixFields(st),
        });
      hooks.onStep?.({ step: this.step, loss, lr, tokensPerS, mfu: mfu ?? undefined, gflops: achieved / 1e9 });
      hooks.afterStep?.(this.step, loss);
      return true;
    };
    const settle = (): boolean => {
      const p = pending;
      pending = null;
      return p ? finish(p) : true;
    };
    try {
      // A resumed run that already reached its end is complete: nothing to add (no second final eval or checkpoint).
      if (this.step > 0 && this.step >= total) {
        this.metrics.close();
        return { runDir: this.runDir, steps: this.step, firstValLoss: null, lastValLoss: null, lastTrainLoss: NaN };
      }
      await this.enterStage(schedule.at(this.step), hooks);
      if (this.step === 0) {
        if (schedule.staged) this.stageEvent(this.stage!);
        evalNow();
      }
      while (this.step < total) {
        const st = await this.enterStage(schedule.at(this.step), hooks);
        const t0 = performance.now();
        const lr = schedule.lr(this.step);
        // All of the step's micro-batches first: a dataset used up under on_exhausted 'stop' ends the run
        // before any of the step is computed, with the data position unchanged.
        let batches: Int32Array[];
        try {
          batches = this.takeBatches(st, hooks);
        } catch (e) {
          if (!(e instanceof DataExhaustedError)) throw e;
          settle();
          stoppedEarly = e.message;
          this.metrics.event(this.step, 'data_exhausted', { ...this.stageFields(), dataset: e.source, windows: e.windows });
          hooks.onLog?.(`step ${this.step}: ${e.message}; stopping with a checkpoint`);
          evalNow();
          this.checkpoint();
          break;
        }
        model.zeroGrads();
        model.resetLoss();
        // Gradients of the loss sum scaled by 1 / (global token count): summed over ranks they are the global mean's.
        const count = st.tokensPerStep;
        for (const tokens of batches) {
          const { ids, targets } = splitWindows(tokens, st.microBatch, st.seq);
          model.run(ids, targets, { batch: st.microBatch, seq: st.seq, backward: true, gradScale: 1 / count, ...this.documents(st, ids) });
        }
        // The step's loss sum and gradient norm stay on the engine: the update is queued with the clip scale and
        // the skip of a non-finite step decided there, and the numbers are read back later (see `finish`).
        const stats = model.stepStats();
        opt.reduceGradients(stats);
        // The previous step's numbers first: a skipped update must not count for this update's bias correction.
        settle();
        opt.update(lr, stats);
        this.step += 1;
        this.tokensSeen += st.tokensPerStep;
        pending = { read: this.be.readLater(stats, 2), count, lr, st, t0 };
        // An asynchronous engine reads a step's numbers when the next step is queued (it never idles on the host),
        // except where the loop needs them now: evaluations, checkpoints, the end of a stage or of the run.
        const boundary = this.step === st.end || this.step === total || (tc.eval_every > 0 && this.step % tc.eval_every === 0) ||
          (tc.checkpoint_every > 0 && this.step % tc.checkpoint_every === 0) || !!this.tasks?.due(this.step, false);
        if (lagged && !boundary) continue;
        if (!settle()) continue;
        if (this.step === st.end && this.step !== total) {
          // A stage ends with an evaluation on its own data and a checkpoint; the next stage's start is logged
          // before that checkpoint, so a resume at the boundary neither repeats nor loses the event.
          evalNow();
          this.stageEvent(schedule.at(this.step));
          this.checkpoint();
          continue;
        }
        if (tc.eval_every > 0 && this.step % tc.eval_every === 0 && this.step !== total) evalNow();
        if (this.step !== total) tasksNow(false);
        if (tc.checkpoint_every > 0 && this.step % tc.checkpoint_every === 0 && this.step !== total) this.checkpoint();
      }
      if (this.step === total && stoppedEarly === undefined) {
        evalNow();
        tasksNow(true);
        this.checkpoint();
      }
    } finally {
      hooks.onEnd?.();
    }
    this.metrics.close();
    return { runDir: this.runDir, steps: this.step, firstValLoss: firstVal, lastValLoss: lastVal, lastTrainLoss: lastLoss, stoppedEarly };
  }

  /** The step's micro-batches, all or none (the data position is unchanged when one cannot be read). */
  private takeBatches(st: Stage, hooks: TrainHooks): Int32Array[] {
    const train = this.train!;
    const before = train.state();
    const out: Int32Array[] = [];
    try {
      for (let micro = 0; micro < st.gradAccum; micro++) {
        const b = train.next();
        for (const r of b.repeats) {
          this.metrics.event(this.step + 1, 'data_repeat', { ...this.stageFields(), dataset: r.source, epoch: r.epoch });
          hooks.onLog?.(`step ${this.step + 1}: warning: dataset '${r.source}' is used up; reading it again (epoch ${r.epoch})`);
        }
        out.push(b.tokens);
      }
    } catch (e) {
      train.restore(before);
      throw e;
    }
    return out;
  }

  /** Realised shares of a mixture's sources in this stage so far (absent for a single dataset). */
  private mixFields(st: Stage): Record<string, number> {
    if (st.data.length < 2 || !this.train) return {};
    const p = this.train.proportions();
    return Object.fromEntries(this.train.sources.map((s, i) => [`mix_${s.name}`, Number(p[i]!.toFixed(6))]));
  }

  /** The `stage` event marks where a stage begins (plots draw the boundaries from it). */
  private stageEvent(st: Stage): void {
    this.metrics.event(st.start, 'stage', {
      stage: st.index + 1, name: st.name, seq: st.seq, rope_theta: st.ropeTheta, data: describeData(st.data),
      steps: st.steps, reset_optimizer: st.resetOptimizer,
    });
  }

  /** Collective (ZeRO-1 gathers the moments); rank 0 writes. Returns the checkpoint directory. */
  checkpoint(): string {
    const moments = this.opt.exportMoments();
    if (this.group.rank !== 0 || !moments) return '';
    return saveCheckpoint(this.runDir, this.model, moments, {
      step: this.step,
      optimizerStep: this.opt.step,
      loader: this.train!.state(),
      stage: this.stage!.index,
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
