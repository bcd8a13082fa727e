/**
 * The residual add fused with the norm (addRmsnormForward, addLayernormForward): against a float64 reference of
 * the add then the norm, and bit for bit against the unfused composition (`add` then the norm op), in place too,
 * on random shapes with fresh inputs each run (the seed is in every message).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { at, type DeviceBuffer } from '../../src/engine/backend.js';
import { be, f32, freeAll, read, zeros } from './helpers.js';
import { layernormRef, randVec, relErr, rmsnormRef, rng } from './reference.js';

const eps = 1e-5;
const seed = Date.now() % 1_000_000;

/** Random shapes: widths not multiples of any block or vector size, and one large enough to run in parallel. */
function shapes(r: () => number): [number, number][] {
  const pick = (lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo));
  return [[1, pick(1, 9)], [pick(2, 40), pick(17, 300)], [pick(2700, 2900), pick(390, 420)]];
}

function bitEqual(a: DeviceBuffer, b: DeviceBuffer, what: string): void {
  const x = read(a);
  const y = read(b);
  for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) assert.fail(`${what}: element ${i} ${x[i]} != ${y[i]} (seed ${seed})`);
}

for (const kind of ['rmsnorm', 'layernorm'] as const) {
  test(`add${kind === 'rmsnorm' ? 'Rms' : 'Layer'}normForward: the float64 reference, and bit for bit the add then the ${kind} op (in place too)`, () => {
    const r = rng(seed + (kind === 'rmsnorm' ? 0 : 1));
    for (const [rows, d] of shapes(r)) {
      const what = `${kind} ${rows}x${d} seed ${seed}`;
      const a = randVec(r, rows * d, 2);
      const b = randVec(r, rows * d, 0.5);
      const w = randVec(r, d);
      const bias = randVec(r, d);
      const [ba, bb, bw, bbias] = [f32(a), f32(b), f32(w), f32(bias)];
      const [sum, out, mean, rstd] = [zeros(rows * d), zeros(rows * d), zeros(rows), zeros(rows)];
      const fused = (s: DeviceBuffer, x: DeviceBuffer, y: DeviceBuffer): void => {
        if (kind === 'rmsnorm') be.addRmsnormForward(at(s), at(out), at(rstd), at(x), at(y), at(bw), rows, d, eps);
        else be.addLayernormForward(at(s), at(out), at(mean), at(rstd), at(x), at(y), at(bw), at(bbias), rows, d, eps);
      };
      fused(sum, ba, bb);
      // float64 reference: the sum rounded to float32 as the engine stores it, then the norm in float64.
      const s32 = Float64Array.from(Float32Array.from(a.map((v, i) => v + b[i]!)));
      const ln = kind === 'layernorm' ? layernormRef(s32, w, bias, rows, d, eps) : null;
      const ref = ln ?? rmsnormRef(s32, w, rows, d, eps);
      assert.ok(relErr(read(sum), s32) === 0, `${what}: sum`);
      assert.ok(relErr(read(out), ref.out) < 1e-5, `${what}: out ${relErr(read(out), ref.out)}`);
      assert.ok(relErr(read(rstd), ref.rstd) < 1e-6, `${what}: rstd`);
      if (ln) assert.ok(relErr(read(mean), ln.mean) < 1e-5, `${what}: mean`);
      // The unfused composition, in place as the model ran it: a += b, then the norm of a.
      const [ua, uout, umean, urstd] = [f32(a), zeros(rows * d), zeros(rows), zeros(rows)];
      be.add(at(ua), at(ua), at(bb), rows * d);
      if (kind === 'rmsnorm') be.rmsnormForward(at(uout), at(urstd), at(ua), at(bw), rows, d, eps);
      else be.layernormForward(at(uout), at(umean), at(urstd), at(ua), at(bw), at(bbias), rows, d, eps);
      bitEqual(out, uout, `${what}: out vs unfused`);
      bitEqual(rstd, urstd, `${what}: rstd vs unfused`);
      if (kind === 'layernorm') bitEqual(mean, umean, `${what}: mean vs unfused`);
      // In place on either addend (the sum buffer is a or b) gives the same bits.
      for (const which of ['a', 'b'] as const) {
        const [ia, ib] = [f32(a), f32(b)];
        fused(which === 'a' ? ia : ib, ia, ib);
        bitEqual(which === 'a' ? ia : ib, ua, `${what}: in place on ${which}, sum`);
        bitEqual(out, uout, `${what}: in place on ${which}, out`);
        freeAll(ia, ib);
      }
      freeAll(ba, bb, bw, bbias, sum, out, mean, rstd, ua, uout, umean, urstd);
    }
  });
}

test('the fused norms check their arguments: zero width, short buffers', () => {
  const x = zeros(12);
  const w = zeros(4);
  assert.throws(() => be.addRmsnormForward(at(x), at(x), at(x), at(x), at(x), at(w), 3, 0, eps), /addRmsnormForward: d must be positive/);
  assert.throws(() => be.addRmsnormForward(at(x), at(x), at(x), at(x), at(x), at(w), 4, 4, eps), /addRmsnormForward: sum needs elements \[0, 16\)/);
  assert.throws(
    () => be.addLayernormForward(at(x), at(x), at(x), at(x), at(x), at(x), at(w), at(w, 1), 3, 4, eps),
    /addLayernormForward: bias needs elements/,
  );
  freeAll(x, w);
});
