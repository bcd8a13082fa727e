/**
 * `lmforge plan --model PRESET --gpus N --gpu NAME --hours H [--mfu A,B] [--tokens T] [--seq S --micro-batch M]
 * [--json]`: the feasibility analysis of a pretraining run (FLOP budget, tokens, Chinchilla multiple, time for a
 * token target, memory per GPU). Formulas: docs/planning.md.
 */
import { parseArgs, usage, UsageError, type FlagSpec } from './args.js';
import { getPreset, PRESET_BATCH } from '../config/presets.js';
import { DEVICES, getDevice, type DeviceSpec } from '../plan/devices.js';
import { plan, formatPlan } from '../plan/plan.js';

const FLAGS: Record<string, FlagSpec> = {
  model: { type: 'string', help: 'model preset (e.g. qwen3-0.6b, qwen3-custom-1.5b, gpt2)' },
  gpus: { type: 'number', help: 'number of GPUs', default: 1 },
  gpu: { type: 'string', help: `GPU kind: ${Object.keys(DEVICES).join(', ')}` },
  hours: { type: 'number', help: 'wall-clock budget in hours', default: 24 },
  mfu: { type: 'string', help: 'model FLOPs utilisation values, comma-separated fractions', default: '0.3,0.5' },
  tokens: { type: 'string', help: 'token target (e.g. 12e9, 12B, 500M; default 20 x params)' },
  seq: { type: 'number', help: 'sequence length (default: the preset\'s training length, else min(4096, context))' },
  'micro-batch': { type: 'number', help: 'sequences per GPU per forward/backward (default: the preset\'s, else 1)' },
  'grad-dtype': { type: 'string', help: 'gradient precision: bf16 or fp32', default: 'bf16' },
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
  if (flags.help || !flags.model || !flags.gpu || positionals.length > 0) {
    const out = usage('plan', '--model PRESET --gpu NAME [--gpus N] [--hours H] [flags]', FLAGS) + '\n';
    if (flags.help) {
      process.stdout.write(out);
      return 0;
    }
    process.stderr.write(
      (positionals.length ? `plan: unexpected argument '${positionals[0]}'\n` : 'plan: --model and --gpu are required\n') + out,
    );
    return 2;
  }
  const name = flags.model as string;
  const model = getPreset(name);
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
  const shape = PRESET_BATCH[name];
  const p = plan({
    modelName: name,
    model,
    gpus: flags.gpus as number,
    gpu,
    hours: flags.hours as number,
    mfu: parseMfuList(flags.mfu as string),
    tokens: flags.tokens !== undefined ? parseTokenCount(flags.tokens as string) : undefined,
    seq: (flags.seq as number | undefined) ?? shape?.seq ?? Math.min(4096, model.context_length),
    microBatch: (flags['micro-batch'] as number | undefined) ?? shape?.batch ?? 1,
    gradBytes: gradDtype === 'bf16' ? 2 : 4,
  });
  process.stdout.write((flags.json ? JSON.stringify(p, null, 2) : formatPlan(p)) + '\n');
  return 0;
}
