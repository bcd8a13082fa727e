/**
 * What a comparison needs from one run directory: its configs, the curves (validation loss against steps, tokens
 * and FLOPs; train loss against steps) and the final figures, from train_config.json, model_config.json and
 * metrics.jsonl. A run that failed before writing them still gets a summary, with its figures missing.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { ModelConfig } from '../config/model.js';
import { RUN_FILES } from '../io/run-dir.js';
import type { Measured, Prediction, VariantState } from '../io/sweep-dir.js';
import { countParams, flopsPerToken } from '../model/count.js';
import { readMetrics, type MetricRecord } from '../train/metrics.js';
import { median } from './stats.js';

export interface CurvePoint {
  step: number;
  tokens: number;
  flops: number;
  loss: number;
}

export interface RunSummary {
  dir: string;
  label: string;
  /** The values that set this run apart, by key. */
  values: Record<string, string | number | boolean>;
  state: VariantState | 'unknown';
  error?: string;
  trainConfig: Record<string, unknown> | null;
  model: ModelConfig | null;
  params: number | null;
  flopsPerToken: number | null;
  /** Steps the run was configured for. */
  plannedSteps: number | null;
  /** Last step with a train record. */
  steps: number;
  tokens: number | null;
  /** Mean of the last (up to) ten logged train losses. */
  finalTrainLoss: number | null;
  finalValLoss: number | null;
  bitsPerByte: number | null;
  /** Spread (max - min) of the last three validation losses. */
  valNoise: number | null;
  tokensPerS: number | null;
  gflops: number | null;
  mfu: number | null;
  /** Wall time: measured by the sweep, else the sum of the logged step times (evaluations not included). */
  wallSeconds: number | null;
  wallMeasured: boolean;
  peakRssBytes: number | null;
  enginePeakBytes: number | null;
  prediction: Prediction | null;
  val: CurvePoint[];
  train: { step: number; loss: number }[];
}

export interface SummaryExtras {
  label?: string;
  values?: Record<string, string | number | boolean>;
  state?: VariantState;
  error?: string;
  measured?: Measured;
  prediction?: Prediction;
}

function readJson(file: string): Record<string, unknown> | null {
  if (!existsSync(file)) return null;
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const finite = (xs: (number | null)[]): number[] => xs.filter((x): x is number => x !== null);

/** Tokens per optimizer step: from a train record's cumulative `tokens`, else from the config (one rank). */
function tokensPerStep(records: MetricRecord[], tc: Record<string, unknown> | null): number | null {
  for (let i = records.length - 1; i >= 0; i--) {
    const r = records[i]!;
    if (r.kind === 'train' && typeof r.tokens === 'number' && r.step > 0) return r.tokens / r.step;
  }
  const [b, s, g] = [num(tc?.micro_batch), num(tc?.seq), num(tc?.grad_accum)];
  return b !== null && s !== null && g !== null ? b * s * g : null;
}

export function summariseRun(dir: string, extra: SummaryExtras = {}): RunSummary {
  const tc = readJson(join(dir, RUN_FILES.trainConfig));
  const model = readJson(join(dir, RUN_FILES.modelConfig)) as ModelConfig | null;
  const records = existsSync(join(dir, RUN_FILES.metrics)) ? readMetrics(dir) : [];
  const seq = num(tc?.seq);
  const fpt = model && seq !== null ? flopsPerToken(model, seq).total : null;
  const perStep = tokensPerStep(records, tc);
  const train = records.filter((r) => r.kind === 'train');
  const evals = records.filter((r) => r.kind === 'eval' && num(r.loss) !== null);
  const val: CurvePoint[] = evals.map((r) => {
    const tokens = perStep !== null ? r.step * perStep : NaN;
    return { step: r.step, tokens, flops: fpt !== null ? tokens * fpt : NaN, loss: r.loss as number };
  });
  const trainLosses = train.map((r) => ({ step: r.step, loss: typeof r.loss === 'number' ? r.loss : NaN }));
  const lastTrain = finite(train.slice(-10).map((r) => num(r.loss)));
  const lastVals = evals.slice(-3).map((r) => r.loss as number);
  const lastEval = evals[evals.length - 1];
  const steps = train.length ? train[train.length - 1]!.step : 0;
  const stepTimes = finite(train.map((r) => num(r.step_s)));
  const tps = finite(train.map((r) => num(r.tokens_per_s)));
  const gf = finite(train.map((r) => num(r.gflops)));
  const mfu = finite(train.map((r) => num(r.mfu)));
  const m = extra.measured;
  return {
    dir,
    label: extra.label ?? basename(resolve(dir)),
    values: extra.values ?? {},
    state: extra.state ?? 'unknown',
    error: extra.error,
    trainConfig: tc,
    model,
    params: model ? countParams(model).total : null,
    flopsPerToken: fpt,
    plannedSteps: num(tc?.steps),
    steps,
    tokens: perStep !== null && steps > 0 ? perStep * steps : null,
    finalTrainLoss: lastTrain.length ? lastTrain.reduce((a, b) => a + b, 0) / lastTrain.length : null,
    finalValLoss: lastEval ? (lastEval.loss as number) : null,
    bitsPerByte: lastEval ? num(lastEval.bpb) : null,
    valNoise: lastVals.length >= 2 ? Math.max(...lastVals) - Math.min(...lastVals) : null,
    tokensPerS: tps.length ? median(tps) : null,
    gflops: gf.length ? median(gf) : null,
    mfu: mfu.length ? median(mfu) : null,
    wallSeconds: m ? m.wallSeconds : stepTimes.length ? stepTimes.reduce((a, b) => a + b, 0) : null,
    wallMeasured: m !== undefined,
    peakRssBytes: m?.peakRssBytes ?? null,
    enginePeakBytes: m?.enginePeakBytes ?? null,
    prediction: extra.prediction ?? null,
    val,
    train: trainLosses,
  };
}
