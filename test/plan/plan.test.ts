import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { getPreset } from '../../src/config/presets.js';
import { getDevice } from '../../src/plan/devices.js';
import { plan, activationBytes, largestShardUnit, formatHours, formatPlan, formatTokens, PlanError, type PlanInput } from '../../src/plan/plan.js';
import { parseTokenCount, parseMfuList } from '../../src/cli/plan.js';

const rel = (a: number, b: number, tol = 1e-12): void =>
  assert.ok(Math.abs(a - b) <= tol * Math.abs(b), `got ${a}, expected ${b}`);

const base = (over: Partial<PlanInput> = {}): PlanInput => ({
  modelName: 'qwen3-0.6b',
  model: getPreset('qwen3-0.6b'),
  gpus: 8,
  gpu: getDevice('b200'),
  hours: 24,
  mfu: [0.4],
  seq: 4096,
  microBatch: 8,
  gradBytes: 2,
  ...over,
});

test('Qwen3-0.6B on 8 B200 for 24 h at 40% MFU: budget, tokens, Chinchilla, time, by hand', () => {
  const p = plan(base());
  const P = 596_049_920; // qwen3.md check value
  assert.equal(p.params, P);
  // Matmul weights per layer: q 1024x2048 + k,v 2 x 1024x1024 + o 2048x1024 + SwiGLU 3 x 1024x3072
  //   = 2,097,152 + 2,097,152 + 2,097,152 + 9,437,184 = 15,728,640; x 28 = 440,401,920; + lm_head 151,936 x 1024
  //   = 155,582,464 -> 595,984,384. FLOPs/token = 6 x 595,984,384 + 12 x 28 x 16 x 128 x 4096
  //   = 3,575,906,304 + 2,818,572,288 = 6,394,478,592.
  assert.equal(p.flopsPerToken, 6_394_478_592);
  // 8 x 2.25e15 x 24 x 3600 = 1.5552e21 FLOP (dense; the document's sparse 4.5e15 would double it).
  rel(p.flopBudget, 1.5552e21);
  const r = p.rows[0]!;
  // 1.5552e21 x 0.4 / 6,394,478,592 = 9.7283...e10 tokens.
  rel(r.tokens, 6.2208e20 / 6_394_478_592);
  assert.ok(Math.abs(r.tokens - 97.28e9) < 0.01e9);
  // Chinchilla target 20 x P = 11,920,998,400 tokens; multiple = 9.728e10 / 1.192e10 = 8.16.
  assert.equal(p.targetTokens, 11_920_998_400);
  rel(r.chinchilla, 6.2208e20 / 6_394_478_592 / 11_920_998_400);
  assert.ok(Math.abs(r.chinchilla - 8.161) < 0.001);
  // Cluster throughput 8 x 2.25e15 x 0.4 / 6,394,478,592 = 1,125,971 tokens/s.
  rel(r.tokensPerS, 7.2e15 / 6_394_478_592);
  assert.equal(Math.round(r.tokensPerS), 1_125_971);
  // Time for 20 x P tokens: 11,920,998,400 x 6,394,478,592 / 7.2e15 s = 10,587 s = 2.94 h.
  rel(r.hoursForTarget, (11_920_998_400 * 6_394_478_592) / 7.2e15 / 3600);
  assert.ok(Math.abs(r.hoursForTarget - 2.941) < 0.001);
  // An explicit token target replaces 20 x P.
  rel(plan(base({ tokens: 100e9 })).rows[0]!.hoursForTarget, (100e9 * 6_394_478_592) / 7.2e15 / 3600);
});

test('Qwen3-0.6B memory per GPU, micro-batch 8 x 4096, by hand', () => {
  const p = plan(base());
  const P = 596_049_920;
  // Activations per token per layer: bf16 4h + 3(Hq*d + Hkv*d) + 3f = 4096 + 3 x (2048 + 1024) + 9216 = 22,528
  // elements = 45,056 B; fp32: 16 lse + 2 norm rstd + (16 + 8) QK-norm rstd = 42 values = 168 B -> 45,224 B.
  const a = activationBytes(getPreset('qwen3-0.6b'), 8, 4096);
  assert.equal(a.bf16ElementsPerLayer, 22_528);
  assert.equal(a.fp32ValuesPerLayer, 42);
  assert.equal(a.perTokenPerLayer, 45_224);
  // Final norm 2 x 2 x 1024 + 4 = 4,100 B. Per token 28 x 45,224 + 4,100 = 1,270,372 B; x 8 x 4096 =
  // 41,627,549,696 B. The head (src/plan/head.ts): 2^30 / (151,936 x 2 B) = 3,533 -> 3,520 rows (a multiple of 64);
  // scratch areas with 1/8 headroom: logits 3,520 x 151,936 x 2 = 1,069,629,440 -> 1,203,333,120, head inputs
  // 3,520 x 1024 x 2 = 7,208,960 -> 8,110,080, row losses 32,768 x 8 = 262,144 -> 294,912: 1,211,738,112 B.
  assert.equal(a.perToken, 1_270_372);
  assert.equal(a.head, 1_211_738_112);
  assert.equal(a.total, 41_627_549_696 + 1_211_738_112);
  const [ddp, z1, z3] = p.memory;
  // Plain DP: (2 + 4 + 2 + 8) x P = 16 P = 9,536,798,720 B of states.
  assert.deepEqual([ddp!.weights, ddp!.master, ddp!.grads, ddp!.optimizer, ddp!.gathered], [2 * P, 4 * P, 2 * P, 8 * P, 0]);
  assert.equal(ddp!.total, 9_536_798_720 + 41_627_549_696 + 1_211_738_112);
  assert.equal(ddp!.fits, true); // 52.4 GB of 180
  // Largest sequence count: (180e9 - 9,536,798,720 - 1,211,738,112) / (1,270,372 x 4096 = 5,203,443,712) = 32.53 -> 32.
  assert.equal(ddp!.maxMicroBatch, 32);
  // ZeRO-1: weights and grads whole, master + m + v over 8: 2P + 2P + 12P/8 = 5.5 P.
  assert.equal(z1!.total - z1!.activations, 5.5 * P);
  // ZeRO-3: 16P/8 = 2P, plus the largest unit gathered: the 151,936 x 1024 embedding (155,582,464 params; one
  // block has 15,728,640 + 2 x 1024 + 2 x 128) x (2 x 2 B prefetch + 2 B gradient).
  assert.equal(largestShardUnit(getPreset('qwen3-0.6b')), 155_582_464);
  assert.equal(z3!.gathered, 155_582_464 * 6);
  assert.equal(z3!.total - z3!.activations, 2 * P + 155_582_464 * 6);
  // Max micro-batch, the head's 1,211,738,112 B taken off too: ZeRO-1 (180e9 - 5.5 P - head = 175,509,987,328) /
  // 5,203,443,712 = 33.73 -> 33; ZeRO-3 (180e9 - 2P - 933,494,784 - head = 176,662,667,264) / 5,203,443,712 = 33.95 -> 33.
  assert.equal(z1!.maxMicroBatch, 33);
  assert.equal(z3!.maxMicroBatch, 33);
  // The printed share of the head.
  assert.match(formatPlan(p), /of which the head's chunk 1\.21 GB/);
  // fp32 gradients add 2 B/param unsharded under DP and ZeRO-1.
  const fp32 = plan(base({ gradBytes: 4 }));
  assert.equal(fp32.memory[0]!.total - ddp!.total, 2 * P);
  // One GPU: nothing is gathered.
  assert.equal(plan(base({ gpus: 1 })).memory[2]!.gathered, 0);
});

test('GPT-2 activations (LayerNorm, GELU MLP, no QK-norm) and a case that does not fit', () => {
  // 4 x 768 + 2 x (768 + 768) + 2 x 3072 = 12,288 elements = 24,576 B; fp32: 12 lse + 2 norms x 2 stats = 16 -> 64 B.
  const a = activationBytes(getPreset('gpt2'), 1, 1024);
  assert.equal(a.perTokenPerLayer, 24_640);
  // qwen3-custom-2b (2,434,342,144 params untied) on one 80 GB H100 at micro-batch 8 x 4096: 16 P = 38.9 GB of
  // states plus far more activations: does not fit; ZeRO does not help on one GPU.
  const p = plan(base({ modelName: 'qwen3-custom-2b', model: getPreset('qwen3-custom-2b'), gpus: 1, gpu: getDevice('h100') }));
  assert.equal(p.params, 2_434_342_144);
  assert.ok(p.memory.every((m) => !m.fits));
  const states = 16 * 2_434_342_144;
  assert.equal(p.memory[0]!.maxMicroBatch, Math.floor((80e9 - states) / (p.activations.perToken * 4096)));
  assert.match(formatPlan(p), /NO \(\d+%\)/);
});

test('bad inputs name the flag and the fix', () => {
  assert.throws(() => plan(base({ mfu: [40] })), /--mfu values are fractions in \(0, 1\], got 40 \(40% is 0.4\)/);
  assert.throws(() => plan(base({ gpus: 0 })), PlanError);
  assert.throws(() => plan(base({ seq: 100_000 })), /exceeds the model's context_length 40960/);
  assert.equal(parseTokenCount('12B'), 12e9);
  assert.equal(parseTokenCount('500M'), 500e6);
  assert.equal(parseTokenCount('1.5e12'), 1.5e12);
  assert.throws(() => parseTokenCount('lots'), /--tokens expects a positive count/);
  assert.deepEqual(parseMfuList('0.3,0.5'), [0.3, 0.5]);
  assert.deepEqual(parseMfuList('30%, 45%'), [0.3, 0.45]);
  assert.throws(() => parseMfuList('0.3,x'), /--mfu expects fractions/);
});

test('the command prints the same numbers, as text and as JSON', () => {
  const bin = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../../bin/lmforge.js');
  const args = ['plan', '--model', 'qwen3-0.6b', '--gpus', '8', '--gpu', 'b200', '--hours', '24', '--mfu', '0.4'];
  const text = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /= 1\.555e21 FLOP/);
  assert.match(text.stdout, /40%\s+1,125,971\s+97\.28B\s+8\.16\s+2\.9 h/);
  assert.match(text.stdout, /data parallel\s+1\.19\s+2\.38\s+1\.19\s+4\.77\s+0\.00\s+42\.84\s+52\.38\s+yes \(29%\)\s+32/);
  const json = spawnSync(process.execPath, [bin, ...args, '--json'], { encoding: 'utf8' });
  const j = JSON.parse(json.stdout) as { flopBudget: number; rows: { tokens: number }[]; params: number };
  assert.equal(j.params, 596_049_920);
  rel(j.rows[0]!.tokens, 6.2208e20 / 6_394_478_592);
  const bad = spawnSync(process.execPath, [bin, 'plan', '--model', 'qwen3-0.6b', '--gpu', 'tpu9'], { encoding: 'utf8' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /unknown GPU 'tpu9'/);
});

test('the plan as text, line for line: a token target in days, fp32 gradients, nothing fits; and one under a minute', () => {
  // Checked by hand: 2 x 1.65e14 x 0.3 / 122,978,304 FLOP/token = 805,020 tokens/s; 1e12 tokens take 345 h; per token
  // 4 x 4,528 + 516 = 18,628 B and the head's 1,223,221,248 B (3,520 rows); DP states 18 P with fp32 gradients,
  // (24e9 - 18 P - head) / (18,628 x 256) = 4,699.
  const a = plan({ modelName: 'cpu-tiny', model: getPreset('cpu-tiny'), gpus: 2, gpu: getDevice('rtx4090'), hours: 1, mfu: [0.3, 0.5], seq: 256, microBatch: 8192, gradBytes: 4, tokens: 1e12 });
  assert.deepEqual(formatPlan(a).split('\n'), [
    "cpu-tiny: 20,235,648 parameters; 2 x rtx4090 (NVIDIA GeForce RTX 4090, dense bf16 1.650e14 FLOP/s, 24 GB) for 1 h",
    "",
    "FLOP budget       2 x 1.650e14 FLOP/s x 1 h x 3600 s = 1.188e18 FLOP",
    "FLOPs per token   1.230e8 at seq 256: 6 x N_matmul + 12 x n_layer x n_head x head_dim x seq = 6 x 20234240 + 12 x 4 x 4 x 32 x 256 (PaLM appendix B; N_matmul = projection, FFN and lm_head weights, tied or not)",
    "Token target      1.00T (--tokens)",
    "",
    "  MFU  tokens/s (all GPUs)  tokens in 1 h  x Chinchilla  time for 1.00T tokens",
    "  30%              805,020          2.90B          7.16      345 h (14.4 days)",
    "  50%            1,341,700          4.83B         11.93       207 h (8.6 days)",
    "",
    "Memory per GPU (GB = 1e9 bytes): micro-batch 8192 x seq 256; bf16 weights, fp32 master weights, fp32 gradients, fp32 AdamW m and v; sharded parts divided by 2",
    "  scheme         weights  master  grads  adam m,v  gathered  activations  total  fits 24 GB  max micro-batch",
    "  data parallel     0.04    0.08   0.08      0.16      0.00        40.29  40.65   NO (169%)             4699",
    "  ZeRO-1            0.04    0.04   0.08      0.08      0.00        40.29  40.53   NO (169%)             4725",
    "  ZeRO-3 / FSDP     0.02    0.04   0.04      0.08      0.16        40.29  40.63   NO (169%)             4705",
    "",
    "Activations (bf16, flash attention, no recomputation): per token: n_layer x [2 B x (4h + 3(Hq*d + Hkv*d) + 3f) + 4 B x 12] + final norm 2 B x 2h + 4 B x 1 = 4 x 4528 + 516 = 18628 B; head: bf16 logits chunk of 3520 rows = 1223221248 B",
    "  x micro-batch 8192 x seq 256 + head = 40.29 GB, of which the head's chunk 1.22 GB.",
    "Not counted: CUDA context, communication buffers, allocator fragmentation (keep ~10% free); recomputation would cut activations to about one tensor per layer.",
    "Peaks are dense bf16: the planning document's 4.5 PFLOP/s per B200 is the 2:4 sparse figure (dense: 2.25).",
  ]);
  const b = plan({ modelName: 'cpu-tiny', model: getPreset('cpu-tiny'), gpus: 1, gpu: getDevice('h100'), hours: 0.5, mfu: [1], seq: 256, microBatch: 1, gradBytes: 2, tokens: 5e5 });
  assert.deepEqual(formatPlan(b).split('\n'), [
    "cpu-tiny: 20,235,648 parameters; 1 x h100 (NVIDIA H100 SXM, dense bf16 9.890e14 FLOP/s, 80 GB) for 0.5 h",
    "",
    "FLOP budget       1 x 9.890e14 FLOP/s x 0.5 h x 3600 s = 1.780e18 FLOP",
    "FLOPs per token   1.230e8 at seq 256: 6 x N_matmul + 12 x n_layer x n_head x head_dim x seq = 6 x 20234240 + 12 x 4 x 4 x 32 x 256 (PaLM appendix B; N_matmul = projection, FFN and lm_head weights, tied or not)",
    "Token target      500.0k (--tokens)",
    "",
    "  MFU   tokens/s (all GPUs)  tokens in 0.5 h  x Chinchilla  time for 500.0k tokens",
    "  100%            8,042,069           14.48B         35.77                 0.0 min",
    "",
    "Memory per GPU (GB = 1e9 bytes): micro-batch 1 x seq 256; bf16 weights, fp32 master weights, bf16 gradients, fp32 AdamW m and v; sharded parts divided by 1",
    "  scheme         weights  master  grads  adam m,v  gathered  activations  total  fits 80 GB  max micro-batch",
    "  data parallel     0.04    0.08   0.04      0.16      0.00         0.09   0.42    yes (1%)            16689",
    "  ZeRO-1            0.04    0.08   0.04      0.16      0.00         0.09   0.42    yes (1%)            16689",
    "  ZeRO-3 / FSDP     0.04    0.08   0.04      0.16      0.00         0.09   0.42    yes (1%)            16689",
    "",
    "Activations (bf16, flash attention, no recomputation): per token: n_layer x [2 B x (4h + 3(Hq*d + Hkv*d) + 3f) + 4 B x 12] + final norm 2 B x 2h + 4 B x 1 = 4 x 4528 + 516 = 18628 B; head: bf16 logits chunk of 256 rows = 87591168 B",
    "  x micro-batch 1 x seq 256 + head = 0.09 GB, of which the head's chunk 0.09 GB.",
    "Not counted: CUDA context, communication buffers, allocator fragmentation (keep ~10% free); recomputation would cut activations to about one tensor per layer.",
    "Peaks are dense bf16: the planning document's 4.5 PFLOP/s per B200 is the 2:4 sparse figure (dense: 2.25).",
  ]);
});

test('every input check, and the edges that are accepted', () => {
  const rejects = (over: Partial<PlanInput>, re: RegExp) =>
    assert.throws(() => plan(base(over)), (e: unknown) => e instanceof PlanError && re.test(e.message), JSON.stringify(over));
  rejects({ gpus: 1.5 }, /^plan: --gpus must be a whole number >= 1, got 1\.5$/);
  rejects({ hours: 0 }, /^plan: --hours must be a positive number, got 0$/);
  rejects({ hours: Infinity }, /--hours must be a positive number, got Infinity/);
  rejects({ hours: NaN }, /--hours must be a positive number/);
  rejects({ mfu: [] }, /^plan: --mfu needs at least one value, e\.g\. --mfu 0\.3,0\.5$/);
  rejects({ mfu: [0] }, /--mfu values are fractions in \(0, 1\], got 0 /);
  rejects({ mfu: [0.5, 1.01] }, /got 1\.01/);
  rejects({ seq: 0 }, /^plan: --seq must be a whole number >= 1, got 0$/);
  rejects({ seq: 2.5 }, /--seq must be a whole number >= 1, got 2\.5/);
  rejects({ seq: 40961 }, /^plan: --seq 40961 exceeds the model's context_length 40960$/);
  rejects({ microBatch: 0 }, /^plan: --micro-batch must be a whole number >= 1, got 0$/);
  rejects({ microBatch: 1.5 }, /--micro-batch must be a whole number >= 1, got 1\.5/);
  rejects({ tokens: 0 }, /^plan: --tokens must be positive, got 0$/);
  rejects({ gpu: { ...getDevice('h100'), peakFlops: 0 } }, /^plan: the GPU peak must be positive, got 0$/);
  rejects({ gpu: { ...getDevice('h100'), memoryBytes: 0 } }, /^plan: the GPU memory must be positive, got 0$/);
  for (const ok of [{ mfu: [1] }, { seq: 40960 }, { seq: 1 }, { microBatch: 1 }, { gpus: 1 }, { hours: 0.01 }, { tokens: 1 }])
    assert.doesNotThrow(() => plan(base(ok)), JSON.stringify(ok));
});

test('fits means the states and activations take at most the memory, to the byte', () => {
  const p = plan(base());
  const total = p.memory[0]!.total;
  const at = (bytes: number) => plan(base({ gpu: { ...getDevice('b200'), memoryBytes: bytes } })).memory[0]!;
  assert.equal(at(total).fits, true);
  assert.equal(at(total - 1).fits, false);
  assert.equal(at(total - 1).maxMicroBatch, 7);
  // Less memory than the states alone: no micro-batch fits (0, not negative).
  assert.equal(at(1e9).maxMicroBatch, 0);
});

test('the largest unit ZeRO-3 gathers: a block when the vocabulary is small, by hand', () => {
  // GPT-2 block: attention 4 x 768^2 + 4 x 768 biases = 2,362,368; MLP 2 x 768 x 3072 + 3072 + 768 = 4,722,432;
  // two LayerNorms 4 x 768 = 3,072: 7,087,872 (12 of them are 85,054,464 of GPT-2's 124,439,808).
  assert.equal(largestShardUnit({ ...getPreset('gpt2'), vocab_size: 1000 }), 7_087_872);
  // With the real vocabulary the 50,257 x 768 embedding plus 1,024 x 768 positions win: 39,383,808.
  assert.equal(largestShardUnit(getPreset('gpt2')), 39_383_808);
  // cpu-small with 1,000 tokens: q, o 512 x 512, k, v 256 x 512: 786,432; SwiGLU 3 x 512 x 1536 = 2,359,296; norms
  // 2 x 512 + QK-norm 2 x 64 = 1,152: 3,146,880 (the untied 1,000 x 512 head and embedding are 512,000 each).
  assert.equal(largestShardUnit({ ...getPreset('cpu-small'), vocab_size: 1000 }), 3_146_880);
  // An untied head larger than the embedding is the unit: llama3-1.5b untied, 128,256 x 2,048.
  assert.equal(largestShardUnit({ ...getPreset('llama3-1.5b'), tie_embeddings: false }), 128_256 * 2048);
  const g = plan(base({ modelName: 'gpt2-small-vocab', model: { ...getPreset('gpt2'), vocab_size: 1000 }, seq: 1024, gpus: 4 }));
  assert.equal(g.memory[2]!.gathered, 7_087_872 * 6);
});

test('GPT-2 activations: the final LayerNorm keeps two statistics, and the formula says so', () => {
  const a = activationBytes(getPreset('gpt2'), 2, 1024);
  // Final norm 2 x 2 x 768 + 4 x 2 = 3,080 B; 12 x 24,640 + 3,080 = 298,760 B per token. Head: stride 50,264 (50,257
  // rounded up to 8), 2,048 rows (all the tokens): 205,881,344 + 3,145,728 + 16,384 B, each + 1/8 = 235,173,888 B.
  assert.deepEqual([a.fp32ValuesPerLayer, a.perTokenFinalNorm, a.head, a.perToken, a.total], [16, 3080, 235_173_888, 298_760, 298_760 * 2048 + 235_173_888]);
  assert.equal(a.formula,
    'per token: n_layer x [2 B x (4h + 2(Hq*d + Hkv*d) + 2f) + 4 B x 16] + final norm 2 B x 2h + 4 B x 2' +
    ' = 12 x 24640 + 3080 = 298760 B; head: bf16 logits chunk of 2048 rows = 235173888 B');
});

test('token counts and durations as printed', () => {
  const cases: Array<[number, string]> = [[1.5e12, '1.50T'], [1e12, '1.00T'], [2.5e9, '2.50B'], [1e9, '1.00B'], [3.4e6, '3.4M'], [1e6, '1.0M'], [1500, '1.5k'], [1000, '1.0k'], [999, '999'], [-2e9, '-2.00B']];
  for (const [x, s] of cases) assert.equal(formatTokens(x), s, String(x));
  const hours: Array<[number, string]> = [[0.5, '30.0 min'], [0.999, '59.9 min'], [1, '1.0 h'], [47.9, '47.9 h'], [48, '48 h (2.0 days)'], [100, '100 h (4.2 days)']];
  for (const [h, s] of hours) assert.equal(formatHours(h), s, String(h));
});

test('a staged config: each stage\'s tokens, time and memory at its own seq and batch, summed over the stages', async () => {
  const { planStages } = await import('../../src/plan/plan.js');
  const input = { modelName: 'qwen3-0.6b', model: getPreset('qwen3-0.6b'), gpus: 8, gpu: getDevice('b200'), hours: 24, mfu: [0.3, 0.5], gradBytes: 2 as const };
  const stages = [
    { name: 'a', seq: 4096, microBatch: 8, steps: 100, tokensPerStep: 8 * 4 * 4096 * 8 },
    { name: 'b', seq: 32768, microBatch: 1, steps: 10, tokensPerStep: 1 * 4 * 32768 * 8 },
  ];
  const sp = planStages(input, stages);
  stages.forEach((st, i) => {
    const p = plan({ ...input, seq: st.seq, microBatch: st.microBatch });
    const s = sp.stages[i]!;
    assert.equal(s.tokens, st.steps * st.tokensPerStep);
    assert.equal(s.flopsPerToken, p.flopsPerToken);
    // hours = tokens x FLOPs/token / (GPUs x peak x MFU), the same arithmetic as a single plan's hoursForTarget.
    rel(s.hours[0]!, (s.tokens * p.flopsPerToken) / (8 * 2.25e15 * 0.3) / 3600);
    assert.deepEqual(s.memory, p.memory);
  });
  assert.equal(sp.tokens, 100 * 8 * 4 * 4096 * 8 + 10 * 4 * 32768 * 8);
  rel(sp.hours[1]!, sp.stages[0]!.hours[1]! + sp.stages[1]!.hours[1]!);
  // The long stage costs more per token: the attention term grows with seq.
  assert.ok(sp.stages[1]!.flopsPerToken > sp.stages[0]!.flopsPerToken);
});

test('lmforge plan --config on a staged config prints every stage and the total', () => {
  const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'lmforge.js');
  const cfg = path.resolve(path.dirname(cli), '..', 'config', 'full_qwen3_0.6b', 'stages.yaml');
  const r = spawnSync(process.execPath, [cli, 'plan', '--config', cfg, '--gpus', '8', '--gpu', 'b200'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /3 stages/);
  assert.match(r.stdout, /general\s+4096\s+8\s+20,000\s+20\.97B/);
  assert.match(r.stdout, /long\s+32768\s+1\s+1,500\s+1\.57B/);
  assert.match(r.stdout, /total\s+26,500\s+27\.79B/);
  const bad = spawnSync(process.execPath, [cli, 'plan', '--config', cfg, '--gpu', 'b200', '--seq', '8192'], { encoding: 'utf8' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--seq does not apply to a staged config/);
});
