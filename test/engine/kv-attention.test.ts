import { test } from 'node:test';
import assert from 'node:assert/strict';
import { at } from '../../src/engine/backend.js';
import { be, f32, freeAll, read, zeros } from './helpers.js';
import { attentionRef, randVec, relErr, rng, type AttnShape } from './reference.js';

// attentionDecode over a cache equals the last rows of full causal attention (the reference) on the same sequence.
test('attentionDecode matches the last n rows of causal attention: GQA groups, prefill chunks and single tokens', () => {
  const r = rng(90);
  for (const [T, n, heads, kvHeads, hd] of [[13, 1, 6, 2, 10], [13, 5, 6, 3, 8], [9, 9, 4, 4, 6], [1, 1, 2, 1, 4], [40, 3, 8, 1, 16]] as const) {
    const stride = (heads + 2 * kvHeads) * hd + 3;
    const s: AttnShape = { batch: 1, seq: T, heads, kvHeads, headDim: hd, scale: 1 / Math.sqrt(hd), sq: stride, sk: stride, sv: stride };
    const qkv = randVec(r, T * stride, 1.5);
    const kOff = heads * hd;
    const vOff = kOff + kvHeads * hd;
    const ref = attentionRef(qkv, qkv.subarray(kOff), qkv.subarray(vOff), s).out;
    const buf = f32(qkv);
    const out = zeros(n * heads * hd);
    const past = T - n;
    be.attentionDecode(at(out), at(buf, past * stride), at(buf, kOff), at(buf, vOff), { q: stride, k: stride, v: stride }, n, past, heads, kvHeads, hd, s.scale);
    const want = ref.subarray(past * heads * hd);
    const e = relErr(read(out), want);
    assert.ok(e < 1e-5, `T=${T} n=${n} heads=${heads}/${kvHeads}: rel err ${e}`);
    freeAll(buf, out);
  }
});

test('attentionDecode rejects a cache too short for past + n', () => {
  const buf = zeros(4 * 12);
  const out = zeros(4);
  assert.throws(() => be.attentionDecode(at(out), at(buf), at(buf, 4), at(buf, 8), { q: 12, k: 12, v: 12 }, 1, 10, 1, 1, 4, 0.5), /needs elements/);
  freeAll(buf, out);
});
