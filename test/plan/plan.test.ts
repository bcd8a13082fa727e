import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { getPreset } from '../../src/config/presets.js';
import { getDevice } from '../../src/plan/devices.js';
import { plan, activationBytes, largestShardUnit, formatHours, formatPlan, formatTokens, PlanError, type PlanInput } from '../../src/plan/plan.js';
import { parseTokenCount, parseMfuList } from '../../src/cli/plan.js';
import { activationArenaBytes } from '../../src/model/activations.js';
import { RECOMPUTE_MODES } from '../../src/config/train.js';

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
  // lmforge's arena per token and layer (h 1024, q = 16 x 128 = 2048, kv = 8 x 128 = 1024, f 3072, SwiGLU up 6144):
  //   f32: input, mid (2 x 1024), two norms' mean + rstd (4), QK-norm rstd (16 + 8), lse (16) = 2,092 values = 8,368 B;
  //   bf16: attnIn, mlpIn (2 x 1024), qkv 4096, qk 3072, att 2048, up 6144, act 3072 = 20,480 elements = 40,960 B.
  const a = activationBytes(getPreset('qwen3-0.6b'), 8, 4096);
  assert.equal(a.perTokenPerLayer, 49_328);
  assert.equal(a.perTokenShared, 0);
  // Outside the blocks: f32 blocksOut, dStream, dTmp (3 x 1024) + final stats 2 = 12,296 B; bf16 finalNormOut 1024,
  // dQkv 4096, dQk 3072, dAtt 2048, dUp 6144, dAct 3072 = 19,456 elements = 38,912 B: 51,208 B.
  assert.equal(a.perTokenOutside, 51_208);
  // Per token 28 x 49,328 + 51,208 + 16 (i32 ids, targets, positions, document starts) = 1,432,408 B; RoPE tables
  // 4096 x 128 x 4 B + one i32 + two f64 = 2,097,172 B; arena 1,432,408 x 32,768 + 2,097,172 = 46,939,242,516 B.
  assert.equal(a.perToken, 1_432_408);
  assert.equal(a.arena, 46_939_242_516);
  // CUDA scratch, each area reserved with 1/8 headroom: the attention backward's row dots 8 x 16 x 4096 x 4 B =
  // 2,097,152 -> 2,359,296 (flash attention reads the bf16 arena in place, staging nothing); loss: 1,728-row
  // chunk of 151,936 logits, fp32 1,050,181,632 + bf16 525,090,816, bf16 head weight 311,164,928, row losses
  // 262,144, each x 9/8 = 2,122,536,960; cuBLASLt 64 MiB -> 75,497,472.
  assert.deepEqual(a.cudaScratch, { attention: 2_359_296, loss: 2_122_536_960, gemm: 75_497_472, total: 2_200_393_728 });
  assert.equal(a.total, 46_939_242_516 + 2_200_393_728);
  const [ddp, z1, z3] = p.memory;
  // Plain DP: (2 + 4 + 2 + 8) x P = 16 P = 9,536,798,720 B of states.
  assert.deepEqual([ddp!.weights, ddp!.master, ddp!.grads, ddp!.optimizer, ddp!.gathered], [2 * P, 4 * P, 2 * P, 8 * P, 0]);
  assert.equal(ddp!.total, 9_536_798_720 + a.total);
  assert.equal(ddp!.fits, true); // 59.1 GB of 180
  // ZeRO-1: weights and grads whole, master + m + v over 8: 2P + 2P + 12P/8 = 5.5 P.
  assert.equal(z1!.total - z1!.activations, 5.5 * P);
  // ZeRO-3: 16P/8 = 2P, plus the largest unit gathered: the 151,936 x 1024 embedding (155,582,464 params; one
  // block has 15,728,640 + 2 x 1024 + 2 x 128) x (2 x 2 B prefetch + 2 B gradient).
  assert.equal(largestShardUnit(getPreset('qwen3-0.6b')), 155_582_464);
  assert.equal(z3!.gathered, 155_582_464 * 6);
  assert.equal(z3!.total - z3!.activations, 2 * P + 155_582_464 * 6);
  // Max micro-batch: the largest b whose states + activations fit, and b + 1 does not.
  for (const m of p.memory) {
    const states = m.total - m.activations;
    assert.ok(states + activationBytes(getPreset('qwen3-0.6b'), m.maxMicroBatch, 4096).total <= 180e9, m.label);
    assert.ok(states + activationBytes(getPreset('qwen3-0.6b'), m.maxMicroBatch + 1, 4096).total > 180e9, m.label);
  }
  assert.deepEqual(p.memory.map((m) => m.maxMicroBatch), [28, 29, 29]);
  // fp32 gradients add 2 B/param unsharded under DP and ZeRO-1.
  const fp32 = plan(base({ gradBytes: 4 }));
  assert.equal(fp32.memory[0]!.total - ddp!.total, 2 * P);
  // One GPU: nothing is gathered.
  assert.equal(plan(base({ gpus: 1 })).memory[2]!.gathered, 0);
});

test('recompute modes for Qwen3-0.6B at 8 x 4096, by hand: what each layer keeps, what is shared, the extra FLOPs', () => {
  const c = getPreset('qwen3-0.6b');
  // mlp: each layer drops up (6144) and act (3072) bf16 = 18,432 B, kept once: 28 x 30,896 + 18,432 + 51,208 + 16.
  const mlp = activationBytes(c, 8, 4096, 'mlp');
  assert.deepEqual([mlp.perTokenPerLayer, mlp.perTokenShared, mlp.perToken], [30_896, 18_432, 934_744]);
  // block: each layer keeps its f32 input (4,096 B); the other 45,232 B live once: 28 x 4,096 + 45,232 + 51,208 + 16.
  const block = activationBytes(c, 8, 4096, 'block');
  assert.deepEqual([block.perTokenPerLayer, block.perTokenShared, block.perToken], [4_096, 45_232, 211_144]);
  // Extra FLOPs per token: 27 re-run layers (the last block's tensors are still in place). mlp: the up GEMM,
  // 2 x 1024 x 6144 = 12,582,912 each; block: the layer's forward, 2 x 15,728,640 matmul weights + 4 x 16 x 128 x 4096
  // attention = 65,011,712 each.
  assert.equal(mlp.extraFlopsPerToken, 27 * 12_582_912);
  assert.equal(block.extraFlopsPerToken, 27 * 65_011_712);
  const p = plan(base({ recompute: 'block' }));
  assert.equal(p.activations.recompute, 'block');
  assert.equal(p.memory[0]!.activations, block.total);
  assert.deepEqual(p.recompute.map((r) => r.mode), ['none', 'mlp', 'block']);
  rel(p.recompute[2]!.extraFlopsFraction, (27 * 65_011_712) / 6_394_478_592);
  // On a 40 GB A100 at 8 x 4096 with one GPU: 16 P = 9.54 GB of states; none needs 49.6 GB more, mlp 33.3 GB
  // (42.8 in all: too much), block 9.6 GB: block is the cheapest that fits.
  const small = plan(base({ gpus: 1, gpu: getDevice('a100-40gb') }));
  assert.deepEqual(small.recompute.map((r) => r.fits[0]), [false, false, true]);
  assert.deepEqual(small.cheapestFit, ['block', 'block', 'block']);
  assert.match(formatPlan(small), /cheapest that fits 40 GB: data parallel block; ZeRO-1 block; ZeRO-3 \/ FSDP block/);
  const none = plan(base({ gpus: 1, gpu: getDevice('a100-40gb'), microBatch: 64 }));
  assert.match(formatPlan(none), /data parallel none fits \(lower the micro-batch\)/);
});

test("the planner's arena equals activationArenaBytes (f32 activations, as the arena is allocated today)", () => {
  // Exact wherever every tensor is a multiple of 16 elements (the arena's view alignment); below it by that padding
  // on tiny odd shapes.
  for (const [name, batch, seq] of [['qwen3-0.6b', 8, 2048], ['gpt2', 8, 1024], ['cpu-tiny', 8, 128], ['qwen3-custom-1.5b', 8, 4096], ['llama3-1.5b', 2, 4096]] as const)
    for (const mode of RECOMPUTE_MODES)
      assert.equal(activationBytes(getPreset(name), batch, seq, mode, 4).arena, activationArenaBytes(getPreset(name), batch, seq, 'f32', mode), `${name} ${mode}`);
  const odd = { ...getPreset('cpu-tiny'), vocab_size: 61, hidden_size: 16, n_layer: 3, n_head: 4, n_kv_head: 2, head_dim: 6, ffn_hidden: 20 };
  for (const c of [odd, { ...odd, family: 'gpt2' as const, norm_position: 'post' as const, positions: 'learned' as const, qk_norm: false, norm: 'layernorm' as const, ffn: 'mlp' as const }])
    for (const mode of RECOMPUTE_MODES) {
      const planned = activationBytes(c, 3, 7, mode, 4).arena, real = activationArenaBytes(c, 3, 7, 'f32', mode);
      assert.ok(planned <= real && real - planned < 0.03 * real, `${mode}: planned ${planned}, arena ${real}`);
    }
});

test('GPT-2 (LayerNorm, learned positions, GELU MLP) and a case that does not fit', () => {
  // f32 input, mid (2 x 768), two LayerNorms' mean + rstd (4), lse (12) = 1,552 values = 6,208 B; bf16 attnIn, mlpIn
  // (2 x 768), qkv 2304, att 768, pre-activation and activation (2 x 3072) = 10,752 elements = 21,504 B. No RoPE or
  // QK-norm: no qk copy and no RoPE tables.
  const a = activationBytes(getPreset('gpt2'), 1, 1024);
  assert.equal(a.perTokenPerLayer, 27_712);
  assert.equal(a.fixed, 20);
  // qwen3-custom-2b (2,434,342,144 params untied) on one 80 GB H100 at micro-batch 8 x 4096: 16 P = 38.9 GB of
  // states plus far more activations: does not fit; ZeRO does not help on one GPU.
  const p = plan(base({ modelName: 'qwen3-custom-2b', model: getPreset('qwen3-custom-2b'), gpus: 1, gpu: getDevice('h100') }));
  assert.equal(p.params, 2_434_342_144);
  assert.ok(p.memory.every((m) => !m.fits));
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
  assert.match(text.stdout, /data parallel\s+1\.19\s+2\.38\s+1\.19\s+4\.77\s+0\.00\s+49\.14\s+58\.68\s+yes \(33%\)\s+28/);
  const json = spawnSync(process.execPath, [bin, ...args, '--json'], { encoding: 'utf8' });
  const j = JSON.parse(json.stdout) as { flopBudget: number; rows: { tokens: number }[]; params: number };
  assert.equal(j.params, 596_049_920);
  rel(j.rows[0]!.tokens, 6.2208e20 / 6_394_478_592);
  const bad = spawnSync(process.execPath, [bin, 'plan', '--model', 'qwen3-0.6b', '--gpu', 'tpu9'], { encoding: 'utf8' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /unknown GPU 'tpu9'/);
});

test('--recompute picks the mode the memory table uses; a wrong mode names the allowed ones', () => {
  const bin = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../../bin/lmforge.js');
  const args = ['plan', '--model', 'qwen3-0.6b', '--gpu', 'a100-40gb', '--seq', '4096', '--micro-batch', '8'];
  const r = spawnSync(process.execPath, [bin, ...args, '--recompute', 'block'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /Activations \(lmforge's arena, recompute block\)/);
  assert.match(r.stdout, /cheapest that fits 40 GB: data parallel block/);
  const bad = spawnSync(process.execPath, [bin, ...args, '--recompute', 'blocks'], { encoding: 'utf8' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--recompute must be one of none, mlp, block, got 'blocks'/);
});

test('the plan as text, line for line: a token target in days, fp32 gradients, nothing fits; and one under a minute', () => {
  // Checked by hand: 2 x 1.65e14 x 0.3 / 122,978,304 FLOP/token = 805,020 tokens/s; 1e12 tokens take 345 h; per token
  // 4 x 5,048 + 5,256 + 16 = 25,464 B (layer: f32 270 values, bf16 1,984 elements; see the Qwen3-0.6B case for the
  // tensors); head_dim 32 takes the classic attention kernel (only its row dots are scratch). Too large for none at
  // 24 GB; mlp (each layer drops 1,152 bf16 elements of up + act) fits.
  const a = plan({ modelName: 'cpu-tiny', model: getPreset('cpu-tiny'), gpus: 2, gpu: getDevice('rtx4090'), hours: 1, mfu: [0.3, 0.5], seq: 256, microBatch: 4096, gradBytes: 4, tokens: 1e12 });
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
    "Memory per GPU (GB = 1e9 bytes): micro-batch 4096 x seq 256; bf16 weights, fp32 master weights, fp32 gradients, fp32 AdamW m and v; sharded parts divided by 2",
    "  scheme         weights  master  grads  adam m,v  gathered  activations  total  fits 24 GB  max micro-batch",
    "  data parallel     0.04    0.08   0.08      0.16      0.00        28.62  28.98   NO (121%)             3332",
    "  ZeRO-1            0.04    0.04   0.08      0.08      0.00        28.62  28.86   NO (120%)             3350",
    "  ZeRO-3 / FSDP     0.02    0.04   0.04      0.08      0.16        28.62  28.96   NO (121%)             3336",
    "",
    "Activations (lmforge's arena, recompute none): per token: n_layer x 5048 B kept (every tensor) + 0 B shared + 5256 B outside the blocks + 16 B token ids = 4 x 5048 + 0 + 5256 + 16 = 25464 B (f32 stream and statistics, activations bf16)",
    "  x micro-batch 4096 x seq 256 + 32788 B = 26.70 GB arena; CUDA scratch 1.92 GB (attention row dots 0.02, loss chunk 1.83, cuBLASLt 0.08)",
    "",
    "Recomputation at micro-batch 4096 x seq 256 (total GB per GPU; extra = FLOPs added per token):",
    "  recompute  activations  extra  data parallel     ZeRO-1  ZeRO-3 / FSDP",
    "  none             28.62   0.0%       28.98 NO   28.86 NO       28.96 NO",
    "  mlp              21.37   0.5%      21.74 yes  21.62 yes      21.71 yes",
    "  block            14.35   1.3%      14.72 yes  14.59 yes      14.69 yes",
    "  cheapest that fits 24 GB: data parallel mlp; ZeRO-1 mlp; ZeRO-3 / FSDP mlp",
    "Not counted: CUDA context, communication buffers, allocator fragmentation (keep ~10% free).",
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
    "  data parallel     0.04    0.08   0.04      0.16      0.00         0.39   0.71    yes (1%)            11919",
    "  ZeRO-1            0.04    0.08   0.04      0.16      0.00         0.39   0.71    yes (1%)            11919",
    "  ZeRO-3 / FSDP     0.04    0.08   0.04      0.16      0.00         0.39   0.71    yes (1%)            11919",
    "",
    "Activations (lmforge's arena, recompute none): per token: n_layer x 5048 B kept (every tensor) + 0 B shared + 5256 B outside the blocks + 16 B token ids = 4 x 5048 + 0 + 5256 + 16 = 25464 B (f32 stream and statistics, activations bf16)",
    "  x micro-batch 1 x seq 256 + 32788 B = 0.01 GB arena; CUDA scratch 0.38 GB (attention row dots 0.00, loss chunk 0.31, cuBLASLt 0.08)",
    "",
    "Recomputation at micro-batch 1 x seq 256 (total GB per GPU; extra = FLOPs added per token):",
    "  recompute  activations  extra  data parallel    ZeRO-1  ZeRO-3 / FSDP",
    "  none              0.39   0.0%       0.71 yes  0.71 yes       0.71 yes",
    "  mlp               0.39   0.5%       0.71 yes  0.71 yes       0.71 yes",
    "  block             0.38   1.3%       0.71 yes  0.71 yes       0.71 yes",
    "  cheapest that fits 80 GB: data parallel none; ZeRO-1 none; ZeRO-3 / FSDP none",
    "Not counted: CUDA context, communication buffers, allocator fragmentation (keep ~10% free).",
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
  // A stage's own recompute mode prices its memory; the others keep the input's.
  const mixed = planStages({ ...input, recompute: 'mlp' }, [stages[0]!, { ...stages[1]!, recompute: 'block' }]);
  assert.equal(mixed.stages[0]!.memory[0]!.activations, plan({ ...input, seq: 4096, microBatch: 8, recompute: 'mlp' }).memory[0]!.activations);
  assert.equal(mixed.stages[1]!.memory[0]!.activations, plan({ ...input, seq: 32768, microBatch: 1, recompute: 'block' }).memory[0]!.activations);
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
  // Each stage's recompute mode and the cheapest that fits; --recompute sets every stage's.
  assert.match(r.stdout, /general .* yes\s+none, cheapest fitting none/);
  const a100 = spawnSync(process.execPath, [cli, 'plan', '--config', cfg, '--gpus', '8', '--gpu', 'a100-40gb', '--recompute', 'block'], { encoding: 'utf8' });
  assert.equal(a100.status, 0, a100.stderr);
  assert.match(a100.stdout, /long .* yes\s+block, cheapest fitting mlp/);
  const bad = spawnSync(process.execPath, [cli, 'plan', '--config', cfg, '--gpu', 'b200', '--seq', '8192'], { encoding: 'utf8' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--seq does not apply to a staged config/);
});
