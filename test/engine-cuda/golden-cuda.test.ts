/**
 * Golden parity through `lmforge forward-backward --device cuda` (or cuda-interpret where there is no GPU; see
 * harness.ts and ../shared/golden/README.md): in bf16 mode at the bf16 tolerances (2e-2 on logits and gradients,
 * 1e-2 on losses; a gradient that bf16 GEMM operands alone put above 2e-2 is held to that floor, see BF16_FLOOR),
 * and with LMFORGE_CUDA_PRECISION=fp32 at the fp32 tolerances.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { readSafetensors } from '../../src/io/safetensors.js';
import { goldenCases, relErr, REPO_ROOT } from '../helpers.js';
import { device, skipReason } from './harness.js';

const cases = goldenCases();

interface Tolerances {
  logits: number;
  loss: number; // absolute for the loss, relative for train.losses
  grads: number;
  final: number | null; // null: not held (bf16: Adam's normalised steps amplify bf16 noise in tiny gradients)
}

const TOL: Record<'bf16' | 'fp32', Tolerances> = {
  bf16: { logits: 2e-2, loss: 1e-2, grads: 2e-2, final: null },
  fp32: { logits: 1e-5, loss: 1e-5, grads: 1e-4, final: 1e-4 },
};

/**
 * The bf16 floor: gradients whose error is above the README's 2e-2 in exact (float64) arithmetic whose only change
 * is bf16-rounded GEMM operands, as computed without lmforge by scripts/golden-bf16-floor.py (numpy, from the golden
 * weights; docs/cuda.md). bf16 operands alone cost qwen3-tiny-tied's layer-1 k_norm gradient 2.241e-2 (the engine:
 * the same to 4e-7), so such a gradient is held to its floor plus 5% instead: the engine may round nowhere else.
 * The last test here recomputes these numbers where python3 with numpy is found.
 */
const BF16_FLOOR: Record<string, Record<string, number>> = {
  'qwen3-tiny-tied': { 'grad.model.layers.1.self_attn.k_norm.weight': 2.241e-2 },
};
const FLOOR_MARGIN = 1.05;
// Where python3 with numpy is found, each bf16 run is also compared with that float64 computation itself: the
// engine must round where it does and nowhere else (measured: at most 4.4e-5 apart; the fp32 engine is 1e-2 away).
const hasNumpy = spawnSync('python3', ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0;
const floorScript = join(REPO_ROOT, 'scripts', 'golden-bf16-floor.py');
const FLOOR_DISTANCE = 5e-4;

for (const precision of ['bf16', 'fp32'] as const) {
  for (const [name, dir] of cases) {
    test(`golden ${name} on ${device} (${precision})`, { skip: skipReason }, () => {
      const tol = TOL[precision];
      const c = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8'));
      const out = join(mkdtempSync(join(tmpdir(), 'lmf-golden-cuda-')), 'out.safetensors');
      const t = c.train;
      const r = spawnSync(process.execPath, [
        join(REPO_ROOT, 'bin', 'lmforge.js'), 'forward-backward', '--device', device, '--model', dir,
        '--batch', join(dir, 'batch.safetensors'), '--out', out,
        '--train-steps', String(t.steps), '--lr', String(t.lr), '--beta1', String(t.betas[0]), '--beta2', String(t.betas[1]),
        '--eps', String(t.eps), '--weight-decay', String(t.weight_decay), '--clip', String(t.clip),
      ], { encoding: 'utf8', env: { ...process.env, LMFORGE_CUDA_PRECISION: precision } });
      assert.equal(r.status, 0, `forward-backward --device ${device} failed: ${r.stderr}`);
      const got = readSafetensors(out);
      const exp = readSafetensors(join(dir, 'expected.safetensors'));
      const problems: string[] = [];
      const worst: Record<string, number> = {};
      const check = (key: string, limit: number, group: string) => {
        if (!got.has(key)) return problems.push(`${key}: missing from output`);
        const e = relErr(got.toFloat64(key), exp.toFloat64(key));
        worst[group] = Math.max(worst[group] ?? 0, e);
        if (!(e <= limit)) problems.push(`${key}: relative error ${e.toExponential(2)} > ${limit}`);
      };
      check('logits', tol.logits, 'logits');
      const loss = got.toFloat64('loss')[0]!;
      const eloss = exp.toFloat64('loss')[0]!;
      if (!(Math.abs(loss - eloss) <= tol.loss)) problems.push(`loss ${loss} vs ${eloss}`);
      const names = exp.names();
      const floor = precision === 'bf16' ? (BF16_FLOOR[name] ?? {}) : {};
      for (const k of names.filter((n) => n.startsWith('grad.'))) check(k, floor[k] !== undefined ? floor[k] * FLOOR_MARGIN : tol.grads, 'grads');
      const gl = got.toFloat64('train.losses');
      exp.toFloat64('train.losses').forEach((v, i) => {
        if (!(Math.abs(gl[i]! - v) <= tol.loss * Math.abs(v))) problems.push(`train.losses[${i}] ${gl[i]} vs ${v}`);
      });
      if (tol.final !== null) {
        check('train.grad_norms', tol.final, 'grad_norms');
        for (const k of names.filter((n) => n.startsWith('train.final.'))) check(k, tol.final, 'final');
      }
      // The worst errors, for the device-check log.
      process.stdout.write(`# ${name} ${precision}: loss ${loss} vs ${eloss}; worst ${JSON.stringify(worst)}\n`);
      if (precision === 'bf16' && hasNumpy && !name.startsWith('gpt2')) {
        const f = spawnSync('python3', [floorScript, dir, '--against', out], { encoding: 'utf8' });
        const m = /largest gradient distance (\S+) \((\S+)\)/.exec(f.stdout);
        if (!m) problems.push(`golden-bf16-floor.py --against failed: ${f.stderr}`);
        else if (!(Number(m[1]) <= FLOOR_DISTANCE)) problems.push(`${m[2]}: ${m[1]} from float64 with bf16 GEMM operands > ${FLOOR_DISTANCE}`);
      }
      got.close();
      exp.close();
      rmSync(out, { force: true });
      assert.deepEqual(problems, []);
    });
  }
}

// The floor table above is what the independent float64 computation gives, and every other gradient of the
// cases it can compute (Qwen3, Llama) is within 2e-2 there.
test('bf16 floor: the exceptions above are the float64 + bf16-operand errors of scripts/golden-bf16-floor.py',
  { skip: hasNumpy ? false : 'python3 with numpy not found' }, () => {
    for (const [name, dir] of cases) {
      if (name.startsWith('gpt2')) continue; // the script computes Qwen3 and Llama
      const r = spawnSync('python3', [floorScript, dir, '--top', '100'], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const errs = new Map<string, number>();
      for (const m of r.stdout.matchAll(/^\s+(\S+)\s+(\S+)$/gm)) errs.set(m[2]!, Number(m[1]));
      assert.ok(errs.size > 10, r.stdout);
      for (const [k, e] of errs) {
        if (!k.startsWith('grad.')) continue;
        const listed = BF16_FLOOR[name]?.[k];
        if (listed === undefined) assert.ok(e <= TOL.bf16.grads, `${name} ${k}: floor ${e} > 2e-2 but not in BF16_FLOOR`);
        else assert.ok(Math.abs(e - listed) <= 1e-4 * listed + 5e-6, `${name} ${k}: floor ${e}, BF16_FLOOR says ${listed}`);
      }
    }
  });
