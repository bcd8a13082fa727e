/**
 * Runs under `mpirun -np N` from collectives.test.ts (and does nothing when node --test loads it directly):
 * every collective of the MPI process group, and ZeRO-1 AdamW against replicated AdamW, checked on every rank
 * against plain references computed from the same seeded inputs. Prints one JSON line per rank.
 */
import { CpuBackend } from '../../src/engine/cpu.js';
import type { DeviceBuffer } from '../../src/engine/backend.js';
import { createProcessGroup } from '../../src/parallel/index.js';
import { allReduceBuckets, bucketRanges } from '../../src/parallel/buckets.js';
import { shardLayout } from '../../src/parallel/zero-shard.js';
import { ReplicatedAdamW, ZeroAdamW } from '../../src/train/optimizer.js';
import { Decoder } from '../../src/model/decoder.js';
import { initWeights } from '../../src/model/init.js';
import { validateModelConfig } from '../../src/config/schema.js';


function failOnLastRank(): void {
  const be = new CpuBackend();
  const g = createProcessGroup(be);
  const buf = be.alloc('f32', 16);
  g.allReduce({ buf, offset: 0 }, 16, 'sum');
  if (g.rank === g.size - 1) throw new Error('injected failure on the last rank');
  g.allReduce({ buf, offset: 0 }, 16, 'sum'); // never completes: the failing rank never joins
  process.stdout.write('unreachable: the collective completed\n');
}

/** The tiny model of the ZeRO-1 check (the test compares its optimizer memory with lmforge plan). */
export const WORKER_MODEL = {
  family: 'qwen3', vocab_size: 61, hidden_size: 16, n_layer: 2, n_head: 2, n_kv_head: 1, head_dim: 8, ffn_hidden: 24,
  rope_theta: 1e4, norm_eps: 1e-6, context_length: 16, qk_norm: true, tie_embeddings: false,
};

/** Deterministic values in [-1, 1) for (seed, i): every rank can compute every rank's inputs. */
function rand(seed: number, n: number): Float32Array {
  const out = new Float32Array(n);
  let s = (seed * 2654435761) >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t ^= t + Math.imul(t ^ (t >>> 7), 61 | t);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

/** Max of abs error / max(1, abs(reference)): inputs are O(1), so this bounds the f32 rounding of P-term sums. */
function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(b[i]!)));
  return a.length === b.length ? worst : Infinity;
}

function main(): void {
  const be = new CpuBackend();
  be.setThreads(1);
  const g = createProcessGroup(be);
  const P = g.size;
  const errors: Record<string, number> = {};
  const put = (b: DeviceBuffer, x: Float32Array) => be.upload({ buf: b, offset: 0 }, x);
  const get = (b: DeviceBuffer, n = b.length, off = 0) => {
    const o = new Float32Array(n);
    be.download({ buf: b, offset: off }, o);
    return o;
  };

  // all-reduce sum and avg, with several uneven buckets.
  const n = 1000;
  const buf = be.alloc('f32', n);
  put(buf, rand(100 + g.rank, n));
  const buckets = allReduceBuckets(g, { buf, offset: 0 }, n, 300);
  const ref = new Float32Array(n);
  for (let r = 0; r < P; r++) rand(100 + r, n).forEach((x, i) => (ref[i] += x));
  errors.allReduceSum = maxRel(get(buf), ref);
  errors.buckets = buckets === bucketRanges(n, 300).length ? 0 : 1;
  put(buf, rand(100 + g.rank, n));
  g.allReduce({ buf, offset: 0 }, n, 'avg');
  errors.allReduceAvg = maxRel(get(buf), ref.map((x) => x / P));

  // f64 all-reduce on a sub-range (offsets honoured, the rest untouched).
  const d = be.alloc('f64', 10);
  be.upload({ buf: d, offset: 0 }, Float64Array.from({ length: 10 }, (_, i) => i + g.rank * 0.5));
  g.allReduce({ buf: d, offset: 2 }, 5, 'sum');
  const dOut = new Float64Array(10);
  be.download({ buf: d, offset: 0 }, dOut);
  const dRef = Float64Array.from({ length: 10 }, (_, i) => (i >= 2 && i < 7 ? P * i + 0.5 * ((P * (P - 1)) / 2) : i + g.rank * 0.5));
  errors.allReduceF64 = maxRel(dOut, dRef);

  // broadcast from the last rank.
  const root = P - 1;
  put(buf, rand(200 + g.rank, n));
  g.broadcast({ buf, offset: 0 }, n, root);
  errors.broadcast = maxRel(get(buf), rand(200 + root, n));

  // reduce-scatter and all-gather over an uneven ZeRO shard layout (total not a multiple of P).
  const total = 1003;
  const sh = shardLayout(total, P, g.rank);
  const input = be.alloc('f32', total);
  put(input, rand(300 + g.rank, total));
  const slice = be.alloc('f32', sh.capacity);
  g.reduceScatter({ buf: input, offset: 0 }, { buf: slice, offset: 0 }, sh.counts);
  const full = new Float32Array(total);
  for (let r = 0; r < P; r++) rand(300 + r, total).forEach((x, i) => (full[i] += x));
  errors.reduceScatterUneven = maxRel(get(slice, sh.count), full.subarray(sh.start, sh.start + sh.count));
  // equal counts take the MPI_Reduce_scatter_block path
  const eq = 256;
  const input2 = be.alloc('f32', eq * P);
  put(input2, rand(400 + g.rank, eq * P));
  const out2 = be.alloc('f32', eq);
  g.reduceScatter({ buf: input2, offset: 0 }, { buf: out2, offset: 0 }, eq);
  const full2 = new Float32Array(eq * P);
  for (let r = 0; r < P; r++) rand(400 + r, eq * P).forEach((x, i) => (full2[i] += x));
  errors.reduceScatterBlock = maxRel(get(out2), full2.subarray(g.rank * eq, (g.rank + 1) * eq));

  // in-place all-gather: each rank writes its slice, everyone ends with the concatenation.
  const gathered = be.alloc('f32', total);
  const mine = rand(500 + g.rank, total).subarray(sh.start, sh.start + sh.count);
  if (sh.count > 0) be.upload({ buf: gathered, offset: sh.start }, mine);
  g.allGather({ buf: gathered, offset: sh.start }, { buf: gathered, offset: 0 }, sh.counts);
  const gRef = new Float32Array(total);
  for (let r = 0; r < P; r++) {
    const s = shardLayout(total, P, r);
    gRef.set(rand(500 + r, total).subarray(s.start, s.start + s.count), s.start);
  }
  errors.allGatherInPlace = maxRel(get(gathered), gRef);
  // out of place, equal counts
  const part = be.alloc('f32', eq);
  put(part, rand(600 + g.rank, eq));
  const all = be.alloc('f32', eq * P);
  g.allGather({ buf: part, offset: 0 }, { buf: all, offset: 0 }, eq);
  const aRef = new Float32Array(eq * P);
  for (let r = 0; r < P; r++) aRef.set(rand(600 + r, eq), r * eq);
  errors.allGather = maxRel(get(all), aRef);

  // gather to rank 0 only.
  const gOut = g.rank === 0 ? be.alloc('f32', total) : null;
  const src = be.alloc('f32', Math.max(1, sh.capacity));
  if (sh.count > 0) be.upload({ buf: src, offset: 0 }, rand(500 + g.rank, total).subarray(sh.start, sh.start + sh.count));
  g.gather({ buf: src, offset: 0 }, gOut ? { buf: gOut, offset: 0 } : null, sh.counts, 0);
  if (gOut) errors.gather = maxRel(get(gOut), gRef);

  // host reductions
  const h = Float64Array.of(g.rank + 1, -g.rank);
  g.allReduceHost(h, 'sum');
  errors.hostSum = Math.abs(h[0]! - (P * (P + 1)) / 2) + Math.abs(h[1]! + (P * (P - 1)) / 2);
  const hm = Float64Array.of(g.rank);
  g.allReduceHost(hm, 'max');
  errors.hostMax = Math.abs(hm[0]! - (P - 1));

  // bounds: a count past the end of the buffer is refused before MPI sees it (world size 1 moves no data).
  if (g.kind !== 'single') try {
    g.allReduce({ buf, offset: 900 }, 200, 'sum');
    errors.boundsCheck = 1;
  } catch (e) {
    errors.boundsCheck = /needs elements|buffer has/.test(String(e)) ? 0 : 1;
  }

  // ZeRO-1 AdamW == replicated AdamW on a tiny model with different gradients per rank.
  const cfg = validateModelConfig(WORKER_MODEL, 'worker model');
  const a = new Decoder(be, cfg);
  const b = new Decoder(be, cfg);
  initWeights(a, { seed: 7, scaledResidual: true });
  initWeights(b, { seed: 7, scaledResidual: true });
  const opt = { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, clip: 0.5 };
  const rep = new ReplicatedAdamW(be, a, g, opt, 97);
  const zero = new ZeroAdamW(be, b, g, opt);
  // Each optimizer completes the step's statistics [loss sum, squared norm] in engine memory.
  const sa = be.alloc('f64', 2), sb = be.alloc('f64', 2);
  let normErr = 0, lossErr = 0;
  for (let step = 0; step < 3; step++) {
    const grad = rand(1000 + 10 * step + g.rank, a.layout.total).map((x) => x * 0.01);
    be.upload(a.gradPtr(0), grad);
    be.upload(b.gradPtr(0), grad);
    be.upload({ buf: sa, offset: 0 }, Float64Array.of(g.rank + 1, 0));
    be.upload({ buf: sb, offset: 0 }, Float64Array.of(g.rank + 1, 0));
    rep.reduceGradients({ buf: sa, offset: 0 });
    zero.reduceGradients({ buf: sb, offset: 0 });
    const [ra, rb] = [new Float64Array(2), new Float64Array(2)];
    be.download({ buf: sa, offset: 0 }, ra);
    be.download({ buf: sb, offset: 0 }, rb);
    normErr = Math.max(normErr, Math.abs(Math.sqrt(ra[1]!) - Math.sqrt(rb[1]!)) / Math.sqrt(ra[1]!));
    const lossSum = (P * (P + 1)) / 2; // the ranks' loss sums 1..P, summed
    lossErr = Math.max(lossErr, Math.abs(ra[0]! - lossSum), Math.abs(rb[0]! - lossSum));
    rep.update(1e-2, { buf: sa, offset: 0 });
    zero.update(1e-2, { buf: sb, offset: 0 });
  }
  be.free(sa);
  be.free(sb);
  errors.zeroNorm = normErr;
  errors.lossSum = lossErr;
  errors.zeroParams = maxRel(get(b.params), get(a.params));
  const ma = rep.exportMoments();
  const mb = zero.exportMoments();
  if (g.rank === 0) errors.zeroMoments = Math.max(maxRel(mb!.m, ma!.m), maxRel(mb!.v, ma!.v));
  else errors.zeroMoments = ma === null && mb === null ? 0 : 1;
  // moments round trip through import (resharding from the full layout)
  const full3 = { m: rand(77, a.layout.total), v: rand(78, a.layout.total).map(Math.abs) };
  zero.importMoments(full3.m, full3.v, 5);
  const back = zero.exportMoments();
  if (g.rank === 0) errors.zeroImportExport = Math.max(maxRel(back!.m, full3.m), maxRel(back!.v, full3.v));
  const stateBytes = { replicated: rep.stateBytes(), zero: zero.stateBytes(), params: a.layout.total };

  g.barrier();
  process.stdout.write(JSON.stringify({ rank: g.rank, size: P, kind: g.kind, errors, stateBytes }) + '\n');
}

// Last, so the module's constants exist when main runs.
if (process.env.LMFORGE_DIST_WORKER === '1') main();
// 'fail': a JavaScript exception on the last rank while the others wait in a collective: MPI_Abort must end the job.
if (process.env.LMFORGE_DIST_WORKER === 'fail') failOnLastRank();
