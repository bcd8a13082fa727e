/**
 * `lmforge plan --model PRESET --gpus N --gpu NAME --hours H [--mfu A,B] [--tokens T] [--seq S --micro-batch M]
 * [--recompute MODE] [--json]`: the feasibility analysis of a pretraining run (FLOP budget, tokens, Chinchilla
 * multiple, time for a token target, memory per GPU under each activation-recompute mode). `--config FILE` plans a training config instead: its model, and for a staged
 * config each stage's tokens, time and memory, summed over the stages. Formulas: docs/planning.md.
 */
import { parseArgs, usage, UsageError, type FlagSpec } from './args.js';
import { getPreset, PRESET_BATCH } from '../config/presets.js';
import { DEVICES, getDevice, type DeviceSpec } from '../plan/devices.js';
import { plan, formatPlan, planStages, formatStagedPlan } from '../plan/plan.js';
import { loadTrainConfig, RECOMPUTE_MODES, type RecomputeMode } from '../config/train.js';
import { resolveStages } from '../config/stages.js';
import { resolveModelConfig } from '../train/trainer.js';

const FLAGS: Record<string, FlagSpec> = {
  model: { type: 'string', help: 'model preset (e.g. qwen3-0.6b, qwen3-custom-1.5b, gpt2)' },
  config: { type: 'string', help: 'a training config (e.g. config/full_qwen3_0.6b/stages.yaml): its model, stages, seq and batch' },
  gpus: { type: 'number', help: 'number of GPUs', default: 1 },
  gpu: { type: 'string', help: `GPU kind: ${Object.keys(DEVICES).join(', ')}` },
  hours: { type: 'number', help: 'wall-clock budget in hours', default: 24 },
  mfu: { type: 'string', help: 'model FLOPs utilisation values, comma-separated fractions', default: '0.3,0.5' },
  tokens: { type: 'string', help: 'token target (e.g. 12e9, 12B, 500M; default 20 x params)' },
  seq: { type: 'number', help: 'sequence length (default: the preset\'s training length, else min(4096, context))' },
  'micro-batch': { type: 'number', help: 'sequences per GPU per forward/backward (default: the preset\'s, else 1)' },
  'grad-dtype': { type: 'string', help: 'gradient precision: bf16 or fp32', default: 'bf16' },
  recompute: { type: 'string', help: `activation recomputation: ${RECOMPUTE_MODES.join(' | ')} (default: the config's recompute, else none)` },
  peak: { type: 'number', help: 'override the dense bf16 peak per GPU, FLOP/s (e.g. 400e12)' },
  'gpu-memory': { type: 'number', help: 'override the memory per GPU, GB (1e9 bytes)' },
  json: { type: 'boolean', help: 'print the plan as JSON' },
  help: { type: 'boolean', help: 'show this help' },
};

const SUFFIX: Record<string, number> = { k: 1e3, m: 1e6, b: 1e9, g: 1e9, t: 1e12 };

/** '12e9', '12B', '500M', '1.5T' -> a number of tokens. */
export function parseTokenCount(text: string): number {
  const m = /^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kKmMbBgGtT]?)\s*$/.exec(text);
  const x = m ? Number(m[1]) * (m[2] ? SUFFIX[m[2].toLowerCase()]! : 1) : NaN;
  if (!(Number.isFinite(x) && x > 0))
    throw new UsageError(`plan: --tokens expects a positive count such as 12e9, 12B or 500M, got '${text}'`);
  return x;
}

export function parseMfuList(text: string): number[] {
  const parts = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const xs = parts.map((s) => (s.endsWith('%') ? Number(s.slice(0, -1)) / 100 : Number(s)));
  if (xs.length === 0 || xs.some((x) => !(x > 0 && x <= 1)))
    throw new UsageError(`plan: --mfu expects fractions in (0, 1] separated by commas (e.g. 0.3,0.5 or 30%,50%), got '${text}'`);
  return xs;
}

export async function run(argv: string[]): Promise<number> {
  const { flags, positionals } = parseArgs('plan', argv, FLAGS);
  if (flags.help || !(flags.model || flags.config) || !flags.gpu || positionals.length > 0) {
    const out = usage('plan', '(--model PRESET | --config FILE) --gpu NAME [--gpus N] [--hours H] [flags]', FLAGS) + '\n';
    if (flags.help) {
      process.stdout.write(out);
      return 0;
    }
    process.stderr.write(
      (positionals.length ? `plan: unexpected argument '${positionals[0]}'\n` : 'plan: --gpu and one of --model or --config are required\n') + out,
    );
    return 2;
  }
  if (flags.model && flags.config) throw new UsageError('plan: give --model or --config, not both (the config names its model)');
  const tc = flags.config ? loadTrainConfig(flags.config as string, []) : null;
  const name = tc ? tc.model : (flags.model as string);
  const model = tc ? resolveModelConfig(tc) : getPreset(name);
  let gpu: DeviceSpec = { ...getDevice(flags.gpu as string) };
  if (flags.peak !== undefined) {
    const pk = flags.peak as number;
    if (!(pk > 0)) throw new UsageError(`plan: --peak must be a positive FLOP/s figure, got ${pk}`);
    gpu = { ...gpu, peakFlops: pk, about: `${gpu.about}, peak overridden` };
  }
  if (flags['gpu-memory'] !== undefined) {
    const mem = flags['gpu-memory'] as number;
    if (!(mem > 0)) throw new UsageError(`plan: --gpu-memory must be a positive number of GB, got ${mem}`);
    gpu = { ...gpu, memoryBytes: mem * 1e9, about: `${gpu.about}, memory overridden` };
  }
  const gradDtype = flags['grad-dtype'] as string;
  if (gradDtype !== 'bf16' && gradDtype !== 'fp32')
    throw new UsageError(`plan: --grad-dtype must be bf16 or fp32, got '${gradDtype}'`);
  const recomputeFlag = flags.recompute as string | undefined;
  if (recomputeFlag !== undefined && !(RECOMPUTE_MODES as readonly string[]).includes(recomputeFlag))
    throw new UsageError(`plan: --recompute must be one of ${RECOMPUTE_MODES.join(', ')}, got '${recomputeFlag}'`);
  const recompute = (recomputeFlag as RecomputeMode | undefined) ?? tc?.recompute ?? 'none';
  const mfu = parseMfuList(flags.mfu as string);
  const gpus = flags.gpus as number;
  const gradBytes = gradDtype === 'bf16' ? 2 : 4;
  if (tc && tc.stages.length > 0) {
    for (const f of ['seq', 'micro-batch', 'tokens'])
      if (flags[f] !== undefined) throw new UsageError(`plan: --${f} does not apply to a staged config (each stage sets its own); use --set stages.N.KEY=... in the config`);
    if (!(Number.isInteger(gpus) && gpus >= 1)) throw new UsageError(`plan: --gpus must be a whole number >= 1, got ${gpus}`);
    // --recompute applies to every stage; without it each stage has its own (the config's key, or its stage's).
    const stages = resolveStages(tc, model.rope_theta, model.context_length, gpus).map((st) => ({ ...st, recompute: recomputeFlag ? recompute : st.recompute }));
    const sp = planStages({ modelName: name, model, gpus, gpu, hours: flags.hours as number, mfu, gradBytes, recompute }, stages);
    process.stdout.write((flags.json ? JSON.stringify(sp, null, 2) : formatStagedPlan(sp)) + '\n');
    return 0;
  }
  const shape = PRESET_BATCH[name];
  const p = plan({
    modelName: name,
    model,
    gpus: flags.gpus as number,
    gpu,
    hours: flags.hours as number,
    mfu,
    tokens: flags.tokens !== undefined ? parseTokenCount(flags.tokens as string) : undefined,
    seq: (flags.seq as number | undefined) ?? tc?.seq ?? shape?.seq ?? Math.min(4096, model.context_length),
    microBatch: (flags['micro-batch'] as number | undefined) ?? tc?.micro_batch ?? shape?.batch ?? 1,
    gradBytes,
    recompute,
  });
  process.stdout.write((flags.json ? JSON.stringify(p, null, 2) : formatPlan(p)) + '\n');
  return 0;
}
