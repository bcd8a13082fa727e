import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { getPreset } from '../../src/config/presets.js';
import { getDevice } from '../../src/plan/devices.js';
import { plan, activationBytes, largestShardUnit, formatPlan, PlanError, type PlanInput } from '../../src/plan/plan.js';
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
  // Final norm 2 x 2 x 1024 + 4 = 4,100 B; logits 4 x 151,936 = 607,744 B.
  // Per token 28 x 45,224 + 4,100 + 607,744 = 1,878,116 B; x 8 x 4096 = 61,542,105,088 B.
  assert.equal(a.perToken, 1_878_116);
  assert.equal(a.total, 61_542_105_088);
  const [ddp, z1, z3] = p.memory;
  // Plain DP: (2 + 4 + 2 + 8) x P = 16 P = 9,536,798,720 B of states.
  assert.deepEqual([ddp!.weights, ddp!.master, ddp!.grads, ddp!.optimizer, ddp!.gathered], [2 * P, 4 * P, 2 * P, 8 * P, 0]);
  assert.equal(ddp!.total, 9_536_798_720 + 61_542_105_088);
  assert.equal(ddp!.fits, true); // 71.1 GB of 180
  // Largest sequence count: (180e9 - 9,536,798,720) / (1,878,116 x 4096 = 7,692,763,136) = 22.16 -> 22.
  assert.equal(ddp!.maxMicroBatch, 22);
  // ZeRO-1: weights and grads whole, master + m + v over 8: 2P + 2P + 12P/8 = 5.5 P.
  assert.equal(z1!.total - z1!.activations, 5.5 * P);
  // ZeRO-3: 16P/8 = 2P, plus the largest unit gathered: the 151,936 x 1024 embedding (155,582,464 params; one
  // block has 15,728,640 + 2 x 1024 + 2 x 128) x (2 x 2 B prefetch + 2 B gradient).
  assert.equal(largestShardUnit(getPreset('qwen3-0.6b')), 155_582_464);
  assert.equal(z3!.gathered, 155_582_464 * 6);
  assert.equal(z3!.total - z3!.activations, 2 * P + 155_582_464 * 6);
  // Max micro-batch: ZeRO-1 (180e9 - 5.5 P = 176,721,725,440) / 7,692,763,136 = 22.97 -> 22;
  // ZeRO-3 (180e9 - 2P - 933,494,784 = 177,874,405,376) / 7,692,763,136 = 23.12 -> 23.
  assert.equal(z1!.maxMicroBatch, 22);
  assert.equal(z3!.maxMicroBatch, 23);
  // The printed share of the logits: 607,744 x 8 x 4096 = 19,914,555,392 B.
  assert.match(formatPlan(p), /of which fp32 logits 19\.91 GB/);
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
  assert.match(text.stdout, /data parallel\s+1\.19\s+2\.38\s+1\.19\s+4\.77\s+0\.00\s+61\.54\s+71\.08\s+yes \(39%\)\s+22/);
  const json = spawnSync(process.execPath, [bin, ...args, '--json'], { encoding: 'utf8' });
  const j = JSON.parse(json.stdout) as { flopBudget: number; rows: { tokens: number }[]; params: number };
  assert.equal(j.params, 596_049_920);
  rel(j.rows[0]!.tokens, 6.2208e20 / 6_394_478_592);
  const bad = spawnSync(process.execPath, [bin, 'plan', '--model', 'qwen3-0.6b', '--gpu', 'tpu9'], { encoding: 'utf8' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /unknown GPU 'tpu9'/);
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
