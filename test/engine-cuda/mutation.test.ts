/**
 * The interpreted CUDA engine catches the bugs a GPU kernel hides until it runs: a missing __syncthreads and an
 * off-by-one tile bound in the real attention kernels (src/engine/cuda/attention.cu) make the CUDA-vs-CPU check
 * fail, while the kernels as written pass it.
 *   - Every __syncthreads of attention.cu is removed in turn (the interpreter's 'skip-sync' option drops that one
 *     barrier) and the op test must see wrong values.
 *   - Off-by-one tile bounds are compiled into copies of attention.cu (with g++, against the interpreter objects
 *     `npm install` built) and a small driver (native/attention-check.cc) compares them with a float64 reference.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { at } from '../../src/engine/backend.js';
import { REPO_ROOT } from '../helpers.js';
import { assertMutantsFail, barrierSites, missedBarriers, type SourceMutants } from './kernel-mutants.js';
import { both, cuda, device, errOf, freePairs, pair, randF32, rng, skipReason, zerosPair } from './harness.js';

const interpretOnly = skipReason || (device !== 'cuda-interpret' ? 'runs on the interpreted engine only' : false);
const SOURCE = join(REPO_ROOT, 'src', 'engine', 'cuda', 'attention.cu');

/** Attention forward + backward on CUDA and the CPU; the worst relative error of out, lse and the gradients. */
function attentionError(): number {
  const r = rng(31);
  const [batch, seq, heads, kvHeads, hd] = [2, 70, 4, 2, 32];
  const stride = (heads + 2 * kvHeads) * hd + 4, n = batch * seq, od = heads * hd;
  const kOff = heads * hd, vOff = kOff + kvHeads * hd;
  const shape = { batch, seq, heads, kvHeads, headDim: hd, scale: 1 / Math.sqrt(hd) };
  const strides = { q: stride, k: stride, v: stride };
  const qkv = pair(randF32(r, n * stride, 2)), out = zerosPair(n * od), lse = zerosPair(batch * heads * seq);
  const dout = pair(randF32(r, n * od)), dqkv = pair(randF32(r, n * stride));
  both((be, s) => {
    const g = s === 'cpu' ? 'cpu' : 'gpu';
    be.attentionForward(at(out[g]), at(lse[g]), at(qkv[g], 0), at(qkv[g], kOff), at(qkv[g], vOff), strides, shape);
    be.attentionBackward(
      at(dqkv[g], 0), at(dqkv[g], kOff), at(dqkv[g], vOff), at(dout[g]), at(qkv[g], 0), at(qkv[g], kOff), at(qkv[g], vOff),
      at(out[g]), at(lse[g]), strides, shape,
    );
  });
  const worst = Math.max(...[out, lse, dqkv].map((p) => errOf(p)).map((e) => (Number.isNaN(e) ? Infinity : e)));
  freePairs(qkv, out, lse, dout, dqkv);
  return worst;
}

test('every __syncthreads of the attention kernels is needed: removing any one breaks the CUDA-vs-CPU check', { skip: interpretOnly }, () => {
  const g = cuda!;
  const sites = barrierSites(SOURCE);
  assert.ok(sites.length >= 6, `found ${sites.length} barriers in attention.cu`);
  assert.ok(attentionError() < 1e-4, 'the kernels as written pass');
  const missed = missedBarriers(g, sites, () => attentionError() < 1e-4);
  assert.deepEqual(missed, [], 'a barrier removed without any effect on the results');
  assert.ok(attentionError() < 1e-4, 'restored');
});

test('an off-by-one tile bound in attention.cu makes the check fail; the source as written passes', { skip: interpretOnly }, () => {
  // Each mutant changes one bound by one; the first string must occur exactly once in the source.
  const mutants: SourceMutants = {
    'forward key tiles end one key early': ['sh.past + lastRow + 1);', 'sh.past + lastRow);'],
    'dQ key tiles end one key early': ['min(sh.keys(), lastRow + 1);', 'min(sh.keys(), lastRow);'],
    'a tile loads one row past its end': ['(r0 + r < limit)', '(r0 + r <= limit)'],
  };
  assertMutantsFail(SOURCE, 'attention-check.cc', mutants);
});
