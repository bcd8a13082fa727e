/**
 * The head's softmax kernels (src/engine/cuda/loss.cu) against a float64 reference on bf16 logits, as written and
 * with one thing broken at a time: each broken copy must fail the check. Copies of loss.cu are compiled with g++
 * against the interpreter objects `npm install` built, with a small driver (native/loss-check.cc: row losses, bf16
 * dlogits in place, log-probabilities and the first-index argmax, tied maxima, ignored rows, vocabularies of 517,
 * 4101 and 9 columns).
 */
import { test } from 'node:test';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers.js';
import { assertMutantsFail, type SourceMutants } from './kernel-mutants.js';
import { device, skipReason } from './harness.js';

const interpretOnly = skipReason || (device !== 'cuda-interpret' ? 'runs on the interpreted engine only' : false);
const SOURCE = join(REPO_ROOT, 'src', 'engine', 'cuda', 'loss.cu');

test('a broken online softmax, tie rule or tail bound in loss.cu fails the check; the source as written passes', { skip: interpretOnly }, () => {
  // Each mutant changes one thing; the first string must occur exactly once in the source.
  const mutants: SourceMutants = {
    'the running sum is not rescaled when the maximum grows': ['      s *= expf(m - lm);', '      s *= 1.f;'],
    "a thread's later equal maximum replaces its first": ['    if (lm > m) {', '    if (lm >= m) {'],
    'across threads, the larger index wins a tie': ['(ov == v && oi < i)', '(ov == v && oi > i)'],
    'the last vocab % 8 logits are not read': ['  if (j < vocab) {\n    v[0] = toF32(row[j]);', '  if (j < vocab - 1) {\n    v[0] = toF32(row[j]);'],
    'dlogits miss the one-hot at the target': ['if (q * kVec + c == t) v[c] -= gradScale;', 'if (q * kVec + c == t + 1) v[c] -= gradScale;'],
  };
  assertMutantsFail(SOURCE, 'loss-check.cc', mutants);
});
