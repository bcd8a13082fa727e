import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run, table, short, bytesText } from '../../src/cli/params.js';
import { UsageError } from '../../src/cli/args.js';
import { goldenCase } from '../helpers.js';

/** Runs the verb and returns what it printed. */
async function capture(argv: string[]): Promise<string> {
  const chunks: string[] = [];
  const orig = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string | Uint8Array) => { chunks.push(String(s)); return true; }) as typeof process.stdout.write;
  try {
    assert.equal(await run(argv), 0);
  } finally {
    process.stdout.write = orig;
  }
  return chunks.join('');
}

test('single model: counts by part, FLOPs with formula, memory columns', async () => {
  const out = await capture(['qwen3-0.6b', '--seq', '2048']);
  assert.match(out, /total\s+596,049,920\s+596\.05 M/);
  assert.match(out, /non-embedding\s+440,467,456/);
  assert.match(out, /head\s+0\s+tied/);
  assert.match(out, /at seq 2,048/);
  assert.match(out, /= 6 x N_matmul \+ 12 x n_layer x n_head x head_dim x seq = 6 x 595984384 \+ 12 x 28 x 16 x 128 x 2048/);
  assert.match(out, /fp32\s+bf16-mixed/);
  assert.match(out, /AdamW state\s+4\.44 GiB\s+6\.66 GiB/);
});

test('--compare prints one column per model with exact totals', async () => {
  const out = await capture(['gpt2', '--compare', 'llama2-1.36b', 'llama3-1.5b', '--set', 'tie_embeddings=true']);
  const totals = out.split('\n').find((l) => l.startsWith('total params'))!;
  assert.match(totals, /124,439,808\s+1,220,431,104\s+1,281,959,936$/);
  const lines = out.split('\n');
  assert.match(lines[0]!, /^\s+gpt2\s+llama2-1\.36b\s+llama3-1\.5b$/);
  assert.match(out, /^seq\s+1,024\s+1,024\s+1,024$/m);
  // Columns are right-aligned under the model names: every row of the table ends each value exactly where the
  // header's name ends, with a space after it (or the line's end), and every row is as long as the header.
  const table = lines.slice(0, lines.indexOf(''));
  assert.ok(table.length > 20, 'the table has its rows');
  const header = table[0]!;
  const ends = [...header.matchAll(/\S+/g)].map((m) => m.index! + m[0].length - 1);
  assert.equal(ends.length, 3);
  for (const row of table) {
    assert.equal(row.length, header.length, `row '${row}' is not as long as the header`);
    for (const e of ends) assert.ok(row[e] !== ' ' && (e + 1 === row.length || row[e + 1] === ' '), `row '${row}': no value ends at column ${e}`);
  }
});

test('--json and HF directories', async () => {
  const j = JSON.parse(await capture([goldenCase('llama-tiny'), '--json', '--seq', '12']));
  assert.equal(j.config.family, 'llama');
  assert.equal(j.seq, 12);
  assert.equal(j.params.total, j.params.embedding + j.params.attention + j.params.mlp + j.params.norms + j.params.head);
  const arr = JSON.parse(await capture(['gpt2', 'cpu-tiny', '--json']));
  assert.equal(arr.length, 2);
  assert.equal(arr[0].params.total, 124439808);
});

test('usage errors', async () => {
  await assert.rejects(run([]), (e: unknown) => e instanceof UsageError && /name a model/.test(e.message));
  await assert.rejects(run(['gpt2', '--seq', '0']), /--seq must be a positive whole number/);
  await assert.rejects(run(['gpt2', '--set', 'n_layer=0']), /'n_layer' is 0 but must be >= 1/);
  assert.match(await capture(['--presets']), /^cpu-tiny\s+20\.24 M/m);
  assert.match(await capture(['--keys']), /^n_kv_head\s+int >= 1\s+default n_head \(MHA\)/m);
});

test('formatting helpers', () => {
  assert.equal(table([['a', '1'], ['bbb', '1,000']]), 'a        1\nbbb  1,000');
  assert.equal(short(1_720_574_976), '1.72 B');
  assert.equal(bytesText(2 ** 31), '2.00 GiB');
});
