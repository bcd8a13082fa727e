/** `lmforge params`: exact parameter counts, training FLOPs per token and training memory of one or more models. */
import { parseArgs, usage, UsageError, type FlagSpec } from './args.js';
import type { ModelConfig } from '../config/model.js';
import { applyOverrides } from '../config/load.js';
import { loadModelSpec } from '../io/model-dir.js';
import { PRESETS, PRESET_ABOUT, PRESET_BATCH } from '../config/presets.js';
import { MODEL_KEYS, configNotes, describeTable } from '../config/schema.js';
import {
  MEMORY_BF16_MIXED, MEMORY_FP32, countParams, flopsPerToken, trainingMemory,
  type FlopsPerToken, type ParamCounts, type TrainingMemory,
} from '../model/count.js';

const FLAGS: Record<string, FlagSpec> = {
  compare: { type: 'list', help: 'more models to show side by side with the first (presets, config files, HF directories)' },
  seq: { type: 'number', help: 'sequence length for the attention FLOPs (default: the preset\'s training length, else min(context, 2048))' },
  set: { type: 'list', help: 'override config keys on every model, e.g. --set n_layer=12 tie_embeddings=false' },
  json: { type: 'boolean', help: 'print JSON instead of tables' },
  presets: { type: 'boolean', help: 'list the presets and exit' },
  keys: { type: 'boolean', help: 'list the model config keys (types, defaults, meaning) and exit' },
};
const SYNOPSIS = '<preset | config.{json,yaml} | HF directory> [--compare B C ...] [--seq N] [--set key=value ...] [--json]';

export interface ModelReport {
  name: string;
  source: string;
  config: ModelConfig;
  seq: number;
  params: ParamCounts;
  flops: FlopsPerToken;
  memory: { fp32: TrainingMemory; bf16_mixed: TrainingMemory };
  notes: string[];
}

export function reportFor(spec: string, overrides: readonly string[], seqFlag: number | undefined): ModelReport {
  const loaded = loadModelSpec(spec);
  const config = applyOverrides(loaded.config, overrides, '--set');
  const seq = seqFlag ?? PRESET_BATCH[spec]?.seq ?? Math.min(config.context_length, 2048);
  if (!Number.isSafeInteger(seq) || seq < 1) throw new UsageError(`params: --seq must be a positive whole number, got ${seq}`);
  return {
    name: spec,
    source: loaded.kind === 'preset' ? 'preset' : loaded.source,
    config,
    seq,
    params: countParams(config),
    flops: flopsPerToken(config, seq),
    memory: { fp32: trainingMemory(config, MEMORY_FP32), bf16_mixed: trainingMemory(config, MEMORY_BF16_MIXED) },
    notes: configNotes(config),
  };
}

// ---- formatting ----

export const commas = (n: number): string => Math.round(n).toLocaleString('en-US');

/** 1.72 B, 596.05 M, 12.3 K. */
export function short(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e12) return `${(n / 1e12).toFixed(2)} T`;
  if (a >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (a >= 1e3) return `${(n / 1e3).toFixed(1)} K`;
  return String(n);
}

export function flopsText(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e12) return `${(n / 1e12).toFixed(2)} TFLOP`;
  if (a >= 1e9) return `${(n / 1e9).toFixed(2)} GFLOP`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(2)} MFLOP`;
  return `${commas(n)} FLOP`;
}

export function bytesText(n: number): string {
  if (n >= 2 ** 40) return `${(n / 2 ** 40).toFixed(2)} TiB`;
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${(n / 2 ** 10).toFixed(1)} KiB`;
}

/** Left column left-aligned, the others right-aligned, two spaces apart. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => { widths[i] = Math.max(widths[i] ?? 0, c.length); });
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd()).join('\n');
}

const FAMILY_NAME: Record<ModelConfig['family'], string> = { qwen3: 'Qwen3', llama: 'Llama', gpt2: 'GPT-2' };

export function architectureLine(c: ModelConfig): string {
  const heads = c.n_kv_head === c.n_head ? `${c.n_head} heads` : `${c.n_head} heads / ${c.n_kv_head} KV`;
  const ffn = c.ffn === 'swiglu' ? `SwiGLU ${commas(c.ffn_hidden)}` : `MLP ${commas(c.ffn_hidden)} (${c.activation})`;
  const pos = c.positions === 'rope' ? `RoPE ${c.rope_theta.toExponential(0).replace('e+', 'e')}` : 'learned positions';
  return [
    FAMILY_NAME[c.family], `${c.n_layer} layers`, `hidden ${commas(c.hidden_size)}`, `${heads} x ${c.head_dim}`, ffn,
    `vocab ${commas(c.vocab_size)}`, c.norm, pos, c.qk_norm ? 'QK-norm' : '', c.tie_embeddings ? 'tied' : 'untied',
    `context ${commas(c.context_length)}`,
  ].filter(Boolean).join(', ');
}

function pct(part: number, total: number): string {
  return total ? `${((100 * part) / total).toFixed(1)}%` : '';
}

export function formatReport(r: ModelReport): string {
  const p = r.params, c = r.config;
  const out: string[] = [];
  out.push(`${r.name} (${r.source === 'preset' ? `preset: ${PRESET_ABOUT[r.name] ?? ''}` : r.source})`);
  out.push(`  ${architectureLine(c)}`);
  for (const n of r.notes) out.push(`  note: ${n}`);
  out.push('', 'parameters');
  out.push(table([
    ['  embedding', commas(p.embedding), pct(p.embedding, p.total)],
    ['  positions', commas(p.positions), pct(p.positions, p.total)],
    ['  attention', commas(p.attention), pct(p.attention, p.total)],
    ['  mlp', commas(p.mlp), pct(p.mlp, p.total)],
    ['  norms', commas(p.norms), pct(p.norms, p.total)],
    ['  head', commas(p.head), c.tie_embeddings ? 'tied' : pct(p.head, p.total)],
    ['  total', commas(p.total), short(p.total)],
    ['  non-embedding', commas(p.nonEmbedding), short(p.nonEmbedding)],
  ]));
  const f = r.flops;
  out.push('', `training FLOPs per token at seq ${commas(r.seq)} (forward + backward)`);
  out.push(table([
    ['  matmul (6 N)', flopsText(f.matmul), commas(f.matmul)],
    ['  attention', flopsText(f.attention), commas(f.attention)],
    ['  total', flopsText(f.total), commas(f.total)],
  ]));
  out.push(`  = ${f.formula}`);
  const m32 = r.memory.fp32, mb = r.memory.bf16_mixed;
  out.push('', 'training memory (activations not included)');
  out.push(table([
    ['', 'fp32', 'bf16-mixed'],
    ['  weights', bytesText(m32.weights), bytesText(mb.weights)],
    ['  gradients', bytesText(m32.grads), bytesText(mb.grads)],
    ['  AdamW state', bytesText(m32.optimizer), bytesText(mb.optimizer)],
    ['  total', bytesText(m32.total), bytesText(mb.total)],
  ]));
  out.push('  fp32: 4 + 4 + 8 (m, v) bytes/param; bf16-mixed: 2 + 2 + 12 (fp32 master, m, v) bytes/param');
  return out.join('\n');
}

export function formatComparison(rs: readonly ModelReport[]): string {
  const col = (f: (r: ModelReport) => string) => rs.map(f);
  const yes = (b: boolean) => (b ? 'yes' : 'no');
  const rows: string[][] = [
    ['', ...col((r) => r.name)],
    ['family', ...col((r) => FAMILY_NAME[r.config.family])],
    ['layers', ...col((r) => String(r.config.n_layer))],
    ['hidden', ...col((r) => commas(r.config.hidden_size))],
    ['heads / KV', ...col((r) => `${r.config.n_head} / ${r.config.n_kv_head}`)],
    ['head_dim', ...col((r) => String(r.config.head_dim))],
    ['ffn', ...col((r) => `${r.config.ffn} ${commas(r.config.ffn_hidden)}`)],
    ['vocab', ...col((r) => commas(r.config.vocab_size))],
    ['positions', ...col((r) => (r.config.positions === 'rope' ? `rope ${r.config.rope_theta}` : `learned ${r.config.context_length}`))],
    ['qk_norm', ...col((r) => yes(r.config.qk_norm))],
    ['tied', ...col((r) => yes(r.config.tie_embeddings))],
    ['embedding', ...col((r) => commas(r.params.embedding + r.params.positions))],
    ['attention', ...col((r) => commas(r.params.attention))],
    ['mlp', ...col((r) => commas(r.params.mlp))],
    ['norms', ...col((r) => commas(r.params.norms))],
    ['head', ...col((r) => commas(r.params.head))],
    ['total params', ...col((r) => commas(r.params.total))],
    ['  (short)', ...col((r) => short(r.params.total))],
    ['non-embedding', ...col((r) => commas(r.params.nonEmbedding))],
    ['seq', ...col((r) => commas(r.seq))],
    ['FLOPs/token', ...col((r) => flopsText(r.flops.total))],
    ['memory fp32', ...col((r) => bytesText(r.memory.fp32.total))],
    ['memory bf16-mixed', ...col((r) => bytesText(r.memory.bf16_mixed.total))],
  ];
  return [
    table(rows),
    '',
    'embedding includes learned positions; FLOPs/token = 6 x N_matmul + 12 x n_layer x n_head x head_dim x seq (PaLM);',
    'memory = weights + gradients + AdamW state, without activations.',
  ].join('\n');
}

export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(usage('params', SYNOPSIS, FLAGS) + '\n');
    return 0;
  }
  const { flags, positionals } = parseArgs('params', argv, FLAGS);
  if (flags['presets']) {
    const w = Math.max(...Object.keys(PRESETS).map((n) => n.length));
    const lines = Object.keys(PRESETS).map((n) =>
      `${n.padEnd(w)}  ${short(countParams(PRESETS[n]!).total).padStart(9)}  ${PRESET_ABOUT[n] ?? ''}`);
    process.stdout.write(lines.join('\n') + '\n');
    return 0;
  }
  if (flags['keys']) {
    process.stdout.write(describeTable(MODEL_KEYS).join('\n') + '\n');
    return 0;
  }
  const specs = [...positionals, ...((flags['compare'] as string[] | undefined) ?? [])];
  if (specs.length === 0)
    throw new UsageError(`params: name a model.\n${usage('params', SYNOPSIS, FLAGS)}\npresets: ${Object.keys(PRESETS).join(', ')}`);
  const overrides = (flags['set'] as string[] | undefined) ?? [];
  let seq = flags['seq'] as number | undefined;
  let reports = specs.map((s) => reportFor(s, overrides, seq));
  if (seq === undefined && reports.length > 1) {
    // Side by side, FLOPs are only comparable at one sequence length: the shortest default among them.
    seq = Math.min(...reports.map((r) => r.seq));
    reports = specs.map((s) => reportFor(s, overrides, seq));
  }
  if (flags['json']) {
    process.stdout.write(JSON.stringify(reports.length === 1 ? reports[0] : reports, null, 2) + '\n');
  } else if (reports.length === 1) {
    process.stdout.write(formatReport(reports[0]!) + '\n');
  } else {
    process.stdout.write(formatComparison(reports) + '\n');
  }
  return 0;
}
