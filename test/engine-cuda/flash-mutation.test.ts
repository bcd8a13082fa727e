/**
 * The interpreted CUDA engine catches the bugs a GPU kernel hides until it runs, in the tensor-core flash attention
 * (src/engine/cuda/flash_attention.cu) as in the fp32 one (mutation.test.ts, whose mechanism this reuses):
 *   - every __syncthreads of flash_attention.cu is removed in turn (the interpreter's 'skip-sync' option) and the
 *     check against the CPU engine must fail: a tile read before its cp.async landed, or overwritten by the next
 *     prefetch while another warp still reads it, is NaN in the interpreter (cp.async poisons its destination at
 *     the issue and writes it at the wait);
 *   - off-by-one tile bounds are compiled into copies of flash_attention.cu (g++, against the interpreter objects
 *     `npm install` built) with a driver (native/flash-attention-check.cc) that checks them against float64.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { at } from '../../src/engine/backend.js';
import { REPO_ROOT } from '../helpers.js';
import { assertMutantsFail, barrierSites, missedBarriers, type SourceMutants } from './kernel-mutants.js';
import { both, cuda, device, errOf, freePairs, pair, randF32, rng, skipReason, withPrecision, zerosPair } from './harness.js';

const interpretOnly = skipReason || (device !== 'cuda-interpret' ? 'runs on the interpreted engine only' : false);
const SOURCE = join(REPO_ROOT, 'src', 'engine', 'cuda', 'flash_attention.cu');
// bf16 rounding leaves <= 5e-3 here (flash-attention.test.ts); a lost barrier gives NaN or O(1) errors.
const LIMIT = 2e-2;

/** Flash attention forward + backward (bf16 mode, head_dim 64) against the CPU; the worst relative error. */
function flashError(): number {
  const r = rng(32);
  // T = 190: the last forward block has three key tiles (a buffer is refilled) and real rows in every warp.
  const [batch, seq, heads, kvHeads, hd] = [1, 190, 2, 1, 64];
  const stride = (heads + 2 * kvHeads) * hd + 8, n = batch * seq, od = heads * hd;
  const kOff = heads * hd, vOff = kOff + kvHeads * hd;
  const shape = { batch, seq, heads, kvHeads, headDim: hd, scale: 1 / Math.sqrt(hd) };
  const strides = { q: stride, k: stride, v: stride };
  const qkv = pair(randF32(r, n * stride, 2)), out = zerosPair(n * od), lse = zerosPair(batch * heads * seq);
  const dout = pair(randF32(r, n * od)), dqkv = pair(randF32(r, n * stride));
  withPrecision('bf16', () =>
    both((be, s) => {
      const g = s === 'cpu' ? 'cpu' : 'gpu';
      be.attentionForward(at(out[g]), at(lse[g]), at(qkv[g], 0), at(qkv[g], kOff), at(qkv[g], vOff), strides, shape);
      be.attentionBackward(
        at(dqkv[g], 0), at(dqkv[g], kOff), at(dqkv[g], vOff), at(dout[g]), at(qkv[g], 0), at(qkv[g], kOff), at(qkv[g], vOff),
        at(out[g]), at(lse[g]), strides, shape,
      );
    }),
  );
  const worst = Math.max(...[out, lse, dqkv].map((p) => errOf(p)).map((e) => (Number.isNaN(e) ? Infinity : e)));
  freePairs(qkv, out, lse, dout, dqkv);
  return worst;
}

test('every __syncthreads of the flash attention kernels is needed: removing any one breaks the check', { skip: interpretOnly }, () => {
  const g = cuda!;
  const sites = barrierSites(SOURCE);
  assert.ok(sites.length >= 6, `found ${sites.length} barriers in flash_attention.cu`);
  const clean = flashError();
  assert.ok(clean < LIMIT, `the kernels as written pass (${clean})`);
  const missed = missedBarriers(g, sites, () => flashError() < LIMIT);
  assert.deepEqual(missed, [], 'a barrier removed without any effect on the results');
  assert.ok(flashError() < LIMIT, 'restored');
});

test('off-by-one tile bounds in flash_attention.cu make the check fail; the source as written passes', { skip: interpretOnly }, () => {
  // Each mutant changes one bound by one; the first string must occur exactly once in the source. The driver's
  // shapes (T = 65: a last tile of one row) make each of them drop a key, a query or a row.
  const mutants: SourceMutants = {
    'forward key tiles end one key early': ['(rowLast + 1 - kBegin + kFwdKeys - 1) / kFwdKeys', '(rowLast - kBegin + kFwdKeys - 1) / kFwdKeys'],
    'dQ key tiles end one key early': ['(rowLast + 1 - kBegin + kBwdCols - 1) / kBwdCols', '(rowLast - kBegin + kBwdCols - 1) / kBwdCols'],
    'dK/dV query tiles end one query early': ['(qEnd - k0 + kBwdCols - 1) / kBwdCols', '(qEnd - k0 + kBwdCols - 2) / kBwdCols'],
    'a tile loads one row short': ['if (r0 + r < limit) ptx::cpAsync16', 'if (r0 + r < limit - 1) ptx::cpAsync16'],
    'the forward mask lets a row see the next key': ['if (j > row[half] || j < first[half])', 'if (j > row[half] + 1 || j < first[half])'],
    'the dK/dV mask ends a document one query early': ['(i >= key[half] && i < last[half])', '(i >= key[half] && i < last[half] - 1)'],
  };
  assertMutantsFail(SOURCE, 'flash-attention-check.cc', mutants);
});
