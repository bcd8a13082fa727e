/**
 * `lmforge bench --preset NAME [--steps N] [--threads N] [--device cpu|cuda|cuda-interpret|auto] [--recompute MODE]`:
 * full training steps (forward, backward, clip, AdamW) on random tokens; prints one JSON line with the median step
 * time and spread. `--profile` times one more step op by op (src/engine/profile.ts): the JSON gains `profile` and a
 * table goes to stderr.
 */
import { parseArgs, usage, UsageError, type FlagSpec } from './args.js';
import { createBackend, DEVICE_NAMES, parseDevice } from '../engine/index.js';
import type { PendingRead } from '../engine/backend.js';
import { CudaBackend } from '../engine/cuda.js';
import { NativeBackend } from '../engine/native.js';
import { formatProfile, type OpTime } from '../engine/profile.js';
import { Decoder } from '../model/decoder.js';
import { initWeights } from '../model/init.js';
import { AdamW, ADAMW_DEFAULTS } from '../train/adamw.js';
import { Rng } from '../model/rng.js';
import { getPreset, PRESET_BATCH } from '../config/presets.js';
import { RECOMPUTE_MODES, type RecomputeMode } from '../config/train.js';
import { flopsPerToken } from '../model/count.js';
import { median } from '../report/stats.js';
import { deviceFromName, mfu } from '../plan/devices.js';

const FLAGS: Record<string, FlagSpec> = {
  preset: { type: 'string', help: 'model preset (e.g. cpu-small, cpu-realvocab, qwen3-0.6b)' },
  steps: { type: 'number', help: 'timed steps after one warm-up step', default: 5 },
  threads: { type: 'number', help: 'CPU threads (default: all cores)' },
  device: { type: 'string', help: DEVICE_NAMES.join(' | ') + ' (cuda-interpret: the CUDA kernels on the CPU, slow)', default: 'cpu' },
  batch: { type: 'number', help: 'micro-batch (default: the preset\'s benchmark batch)' },
  seq: { type: 'number', help: 'sequence length (default: the preset\'s benchmark length)' },
  seed: { type: 'number', help: 'seed for weights and tokens', default: 0 },
  recompute: { type: 'string', help: `activation recomputation: ${RECOMPUTE_MODES.join(' | ')}`, default: 'none' },
  profile: { type: 'boolean', help: 'time one more step op by op: a table on stderr, `profile` in the JSON' },
  help: { type: 'boolean', help: 'show this help' },
};

export async function run(argv: string[]): Promise<number> {
  const { flags } = parseArgs('bench', argv, FLAGS);
  if (flags.help || !flags.preset) {
    process.stdout.write(usage('bench', '--preset NAME [flags]', FLAGS) + '\n');
    return flags.help ? 0 : 2;
  }
  const name = flags.preset as string;
  const cfg = getPreset(name);
  const shape = PRESET_BATCH[name] ?? { batch: 4, seq: Math.min(512, cfg.context_length) };
  const batch = (flags.batch as number | undefined) ?? shape.batch;
  const seq = (flags.seq as number | undefined) ?? shape.seq;
  const recompute = flags.recompute as string;
  if (!(RECOMPUTE_MODES as readonly string[]).includes(recompute))
    throw new UsageError(`bench: --recompute must be one of ${RECOMPUTE_MODES.join(', ')}, got '${recompute}'`);
  const be = createBackend(parseDevice(flags.device as string));
  if (flags.threads !== undefined) be.setThreads(flags.threads as number);
  const model = new Decoder(be, cfg);
  model.setRecompute(recompute as RecomputeMode);
  initWeights(model, { seed: flags.seed as number, scaledResidual: false });
  const opt = new AdamW(be, model, { ...ADAMW_DEFAULTS, lr: 1e-3 });
  const rng = new Rng((flags.seed as number) + 1);
  const N = batch * seq;
  const ids = new Int32Array(N);
  for (let i = 0; i < N; i++) ids[i] = rng.int(cfg.vocab_size);
  // Like the peer: the labels are the inputs themselves, shifted by one inside the loss.
  const targets = new Int32Array(N).fill(-100);
  for (let b = 0; b < batch; b++) for (let t = 0; t + 1 < seq; t++) targets[b * seq + t] = ids[b * seq + t + 1]!;
  const count = batch * (seq - 1);
  // A full training step as the trainer runs it: the clip scale and the NaN guard decided by the engine from the
  // step's statistics, which are read back without waiting for the work queued after them.
  const step = (): PendingRead => {
    model.zeroGrads();
    model.resetLoss();
    model.run(ids, targets, { batch, seq, backward: true, gradScale: 1 / count });
    const stats = model.stepStats();
    model.gradSquares(stats);
    opt.update(1e-3, 1, stats);
    return be.readLater(stats, 2);
  };
  step().wait();
  // Each step's time is from one step's end to the next one's. On an asynchronous engine the next step is queued
  // before the host waits for this one, so the device never idles on the host (on the CPU each step runs at once).
  const times: number[] = [];
  const steps = flags.steps as number;
  const queueAhead = be.name !== 'cpu';
  let last = performance.now();
  let pending: PendingRead | null = queueAhead ? step() : null;
  for (let i = 0; i < steps; i++) {
    const current = pending ?? step();
    pending = queueAhead && i + 1 < steps ? step() : null;
    current.wait();
    const now = performance.now();
    times.push((now - last) / 1000);
    last = now;
  }
  let profile: OpTime[] | null = null;
  if (flags.profile) {
    if (!(be instanceof NativeBackend)) throw new Error(`bench --profile: the ${be.name} engine cannot be profiled`);
    be.synchronize();
    be.startProfile();
    step().wait();
    profile = be.stopProfile();
    process.stderr.write(`one step, op by op (${be.name === 'cpu' ? 'host clock' : 'stream events'}):\n${formatProfile(profile)}\n`);
  }
  const med = median(times);
  const flops = flopsPerToken(cfg, seq).total;
  // MFU where the device has a known dense bf16 peak (a GPU); on the CPU, GFLOP/s says it.
  const peak = be.name === 'cuda' ? deviceFromName(be.describe())?.peakFlops : undefined;
  const result = {
    name,
    device: be instanceof CudaBackend ? be.kind : be.name,
    backend: be.describe(),
    params: model.layout.total,
    B: batch,
    T: seq,
    recompute,
    threads: be.threads(),
    steps: times.length,
    step_s: round(med, 4),
    step_s_min: round(Math.min(...times), 4),
    step_s_max: round(Math.max(...times), 4),
    tokens_per_s: round(N / med, 1),
    gflops_per_s: round((flops * N) / med / 1e9, 1),
    mfu: peak ? round(mfu(N / med, flops, peak), 4) : null,
    activation_mib: round(model.activationBytes / 2 ** 20, 1),
    // Everything the engine held at once (weights, gradients, AdamW state, activations, scratch buffers).
    engine_peak_mib: round(be.peakAllocatedBytes() / 2 ** 20, 1),
    peak_rss_mib: round(process.resourceUsage().maxRSS / 1024, 1),
  };
  if (be instanceof CudaBackend) {
    // On the GPU the engine's scratch (GEMM workspace, logits chunks, bf16 operand copies) comes on top.
    const m = be.memoryStats();
    Object.assign(result, { gpu_scratch_mib: round(m.scratch / 2 ** 20, 1), gpu_pool_peak_mib: m.poolReservedPeak ? round(m.poolReservedPeak / 2 ** 20, 1) : null });
  }
  if (profile) {
    Object.assign(result, { profile: profile.map((r) => ({ op: r.op, calls: r.calls, ms: round(r.ms, 3), share: round(r.share, 4) })) });
  }
  process.stdout.write(JSON.stringify(result) + '\n');
  opt.dispose();
  model.dispose();
  return 0;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
