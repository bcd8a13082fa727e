/** Eval test plumbing: fixture paths, Parquet files in the Hugging Face hub's schemas, a tiny model with the Qwen3 vocabulary. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import type { Backend } from '../../src/engine/backend.js';
import { Decoder } from '../../src/model/decoder.js';
import { initWeights } from '../../src/model/init.js';
import { validateModelConfig } from '../../src/config/schema.js';
import { REPO_ROOT } from '../helpers.js';

export const EVAL_FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'eval');

export function fixture(name: string): string {
  return join(EVAL_FIXTURES, name);
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'lmforge-eval-'));
}

export function jsonlRows(file: string): Record<string, unknown>[] {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
}

type Col = 'string' | 'int32' | 'int64' | 'strings' | { struct: Record<string, 'strings'> };

/** Column types as the `datasets` library writes each task's features to Parquet. */
export const HF_SCHEMAS: Record<string, Record<string, Col>> = {
  hellaswag: {
    ind: 'int32', activity_label: 'string', ctx_a: 'string', ctx_b: 'string', ctx: 'string', endings: 'strings',
    source_id: 'string', split: 'string', split_type: 'string', label: 'string',
  },
  arc: { id: 'string', question: 'string', choices: { struct: { text: 'strings', label: 'strings' } }, answerKey: 'string' },
  piqa: { goal: 'string', sol1: 'string', sol2: 'string', label: 'int64' },
  winogrande: { sentence: 'string', option1: 'string', option2: 'string', answer: 'string' },
  lambada_openai: { text: 'string' },
};

type SchemaElement = Record<string, unknown>;

function elements(name: string, col: Col): SchemaElement[] {
  if (col === 'string') return [{ name, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' }];
  if (col === 'int32') return [{ name, type: 'INT32', repetition_type: 'OPTIONAL' }];
  if (col === 'int64') return [{ name, type: 'INT64', repetition_type: 'OPTIONAL' }];
  if (col === 'strings')
    return [
      { name, repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
      { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
      { name: 'element', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
    ];
  const fields = Object.entries(col.struct);
  return [{ name, repetition_type: 'OPTIONAL', num_children: fields.length }, ...fields.flatMap(([k, c]) => elements(k, c))];
}

/** Writes rows as a Parquet file with the hub's schema for `schema` (a key of HF_SCHEMAS). */
export function writeHfParquet(file: string, schema: string, rows: Record<string, unknown>[]): void {
  const cols = HF_SCHEMAS[schema]!;
  const names = Object.keys(cols);
  const buf = parquetWriteBuffer({
    columnData: names.map((n) => ({
      name: n,
      data: rows.map((r) => (cols[n] === 'int64' ? BigInt(r[n] as number) : cols[n] === 'string' ? String(r[n]) : r[n])),
    })),
    schema: [{ name: 'schema', num_children: names.length }, ...names.flatMap((n) => elements(n, cols[n]!))],
  } as unknown as Parameters<typeof parquetWriteBuffer>[0]);
  writeFileSync(file, new Uint8Array(buf));
}

/** A small Qwen3-style model with the real 151,936-token vocabulary, random weights (seeded). */
export function qwen3VocabModel(be: Backend, seed = 1, contextLength = 256): Decoder {
  const cfg = validateModelConfig(
    { family: 'qwen3', hidden_size: 32, n_layer: 2, n_head: 2, n_kv_head: 1, ffn_hidden: 64, context_length: contextLength, init_std: 0.5 },
    'test model',
  );
  const m = new Decoder(be, cfg);
  initWeights(m, { seed, scaledResidual: true });
  return m;
}
