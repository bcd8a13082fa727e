/**
 * Plain float64 reference implementations of every CPU kernel, written for clarity, not speed.
 * The kernel tests compare the native float32 results against these, and check these references'
 * analytic backward passes against central finite differences.
 */

export type Vec = Float64Array;

/** Deterministic PRNG (mulberry32) so a failing case can be reproduced from its seed. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n uniform values in [-scale, scale), rounded to float32 so native and reference see the same inputs. */
export function randVec(r: () => number, n: number, scale = 1): Vec {
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) v[i] = Math.fround((r() * 2 - 1) * scale);
  return v;
}

export function randInts(r: () => number, n: number, hi: number): Int32Array {
  const v = new Int32Array(n);
  for (let i = 0; i < n; i++) v[i] = Math.floor(r() * hi);
  return v;
}

// ---- matrix products ----

/** C[m,n] = op(A) op(B) with leading dimensions; returns packed C. */
export function matmulRef(
  a: Vec, b: Vec, m: number, n: number, k: number, transA: boolean, transB: boolean, lda: number, ldb: number,
): Vec {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) {
        const av = transA ? a[p * lda + i] : a[i * lda + p];
        const bv = transB ? b[j * ldb + p] : b[p * ldb + j];
        s += av * bv;
      }
      c[i * n + j] = s;
    }
  }
  return c;
}

// ---- embeddings ----

export function embeddingRef(ids: Int32Array, table: Vec, d: number): Vec {
  const out = new Float64Array(ids.length * d);
  ids.forEach((id, n) => {
    for (let j = 0; j < d; j++) out[n * d + j] = table[id * d + j];
  });
  return out;
}

export function embeddingBackwardRef(ids: Int32Array, dout: Vec, d: number, vocab: number): Vec {
  const dt = new Float64Array(vocab * d);
  ids.forEach((id, n) => {
    for (let j = 0; j < d; j++) dt[id * d + j] += dout[n * d + j];
  });
  return dt;
}

// ---- normalisation ----

export function rmsnormRef(x: Vec, w: Vec, rows: number, d: number, eps: number): { out: Vec; rstd: Vec } {
  const out = new Float64Array(rows * d);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let j = 0; j < d; j++) ss += x[r * d + j] ** 2;
    const s = 1 / Math.sqrt(ss / d + eps);
    rstd[r] = s;
    for (let j = 0; j < d; j++) out[r * d + j] = x[r * d + j] * s * w[j];
  }
  return { out, rstd };
}

export function rmsnormBackwardRef(dout: Vec, x: Vec, w: Vec, rows: number, d: number, eps: number): { dx: Vec; dw: Vec } {
  const { rstd } = rmsnormRef(x, w, rows, d, eps);
  const dx = new Float64Array(rows * d);
  const dw = new Float64Array(d);
  for (let r = 0; r < rows; r++) {
    const s = rstd[r];
    let dot = 0;
    for (let j = 0; j < d; j++) dot += dout[r * d + j] * w[j] * x[r * d + j];
    for (let j = 0; j < d; j++) {
      const i = r * d + j;
      dx[i] = s * dout[i] * w[j] - (x[i] * s * s * s * dot) / d;
      dw[j] += dout[i] * x[i] * s;
    }
  }
  return { dx, dw };
}

export function layernormRef(
  x: Vec, w: Vec, b: Vec, rows: number, d: number, eps: number,
): { out: Vec; mean: Vec; rstd: Vec } {
  const out = new Float64Array(rows * d);
  const mean = new Float64Array(rows);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let mu = 0;
    for (let j = 0; j < d; j++) mu += x[r * d + j];
    mu /= d;
    let vr = 0;
    for (let j = 0; j < d; j++) vr += (x[r * d + j] - mu) ** 2;
    const s = 1 / Math.sqrt(vr / d + eps);
    mean[r] = mu;
    rstd[r] = s;
    for (let j = 0; j < d; j++) out[r * d + j] = (x[r * d + j] - mu) * s * w[j] + b[j];
  }
  return { out, mean, rstd };
}

export function layernormBackwardRef(
  dout: Vec, x: Vec, w: Vec, rows: number, d: number, eps: number,
): { dx: Vec; dw: Vec; db: Vec } {
  const { mean, rstd } = layernormRef(x, w, new Float64Array(d), rows, d, eps);
  const dx = new Float64Array(rows * d);
  const dw = new Float64Array(d);
  const db = new Float64Array(d);
  for (let r = 0; r < rows; r++) {
    let mg = 0;
    let mgx = 0;
    for (let j = 0; j < d; j++) {
      const i = r * d + j;
      const xh = (x[i] - mean[r]) * rstd[r];
      const g = dout[i] * w[j];
      mg += g;
      mgx += g * xh;
      dw[j] += dout[i] * xh;
      db[j] += dout[i];
    }
    mg /= d;
    mgx /= d;
    for (let j = 0; j < d; j++) {
      const i = r * d + j;
      const xh = (x[i] - mean[r]) * rstd[r];
      dx[i] = rstd[r] * (dout[i] * w[j] - mg - xh * mgx);
    }
  }
  return { dx, dw, db };
}

// ---- qk prologue: per-head RMSNorm then half-split RoPE ----

export interface QkPrepShape {
  n: number;
  seq: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  qkvStride: number;
  eps: number;
  /** Position of each token (the RoPE table row); default t % seq. */
  positions?: readonly number[];
}

/** Returns packed out [N, (heads+kvHeads)*hd] and rstd [N, heads+kvHeads] (1 where a head type is not normalised). */
export function qkPrepRef(
  qkv: Vec, qw: Vec | null, kw: Vec | null, cos: Vec | null, sin: Vec | null, s: QkPrepShape,
): { out: Vec; rstd: Vec } {
  const hd = s.headDim;
  const nh = s.heads + s.kvHeads;
  const half = hd / 2;
  const out = new Float64Array(s.n * nh * hd);
  const rstd = new Float64Array(s.n * nh);
  for (let t = 0; t < s.n; t++) {
    const p = s.positions ? s.positions[t]! : t % s.seq;
    for (let h = 0; h < nh; h++) {
      const w = h < s.heads ? qw : kw;
      const x = qkv.subarray(t * s.qkvStride + h * hd, t * s.qkvStride + (h + 1) * hd);
      const y = new Float64Array(hd);
      let r = 1;
      if (w) {
        let ss = 0;
        for (let i = 0; i < hd; i++) ss += x[i] * x[i];
        r = 1 / Math.sqrt(ss / hd + s.eps);
        for (let i = 0; i < hd; i++) y[i] = x[i] * r * w[i];
      } else {
        y.set(x);
      }
      rstd[t * nh + h] = r;
      const o = out.subarray((t * nh + h) * hd, (t * nh + h + 1) * hd);
      if (cos && sin) {
        for (let i = 0; i < half; i++) {
          const c = cos[p * half + i];
          const sn = sin[p * half + i];
          o[i] = y[i] * c - y[i + half] * sn;
          o[i + half] = y[i + half] * c + y[i] * sn;
        }
      } else {
        o.set(y);
      }
    }
  }
  return { out, rstd };
}

/** Gradients of sum(out * dout): dqkv (same layout as qkv, v columns zero), dqw, dkw. */
export function qkPrepBackwardRef(
  dout: Vec, qkv: Vec, qw: Vec | null, kw: Vec | null, cos: Vec | null, sin: Vec | null, s: QkPrepShape,
): { dqkv: Vec; dqw: Vec; dkw: Vec } {
  const hd = s.headDim;
  const nh = s.heads + s.kvHeads;
  const half = hd / 2;
  const dqkv = new Float64Array(qkv.length);
  const dqw = new Float64Array(hd);
  const dkw = new Float64Array(hd);
  for (let t = 0; t < s.n; t++) {
    const p = s.positions ? s.positions[t]! : t % s.seq;
    for (let h = 0; h < nh; h++) {
      const w = h < s.heads ? qw : kw;
      const dwAcc = h < s.heads ? dqw : dkw;
      const go = dout.subarray((t * nh + h) * hd, (t * nh + h + 1) * hd);
      const dy = new Float64Array(hd);
      if (cos && sin) {
        for (let i = 0; i < half; i++) {
          const c = cos[p * half + i];
          const sn = sin[p * half + i];
          dy[i] = go[i] * c + go[i + half] * sn;
          dy[i + half] = go[i + half] * c - go[i] * sn;
        }
      } else {
        dy.set(go);
      }
      const base = t * s.qkvStride + h * hd;
      const x = qkv.subarray(base, base + hd);
      if (w) {
        let ss = 0;
        for (let i = 0; i < hd; i++) ss += x[i] * x[i];
        const r = 1 / Math.sqrt(ss / hd + s.eps);
        let dot = 0;
        for (let i = 0; i < hd; i++) dot += dy[i] * w[i] * x[i];
        for (let i = 0; i < hd; i++) {
          dqkv[base + i] = r * dy[i] * w[i] - (x[i] * r * r * r * dot) / hd;
          dwAcc[i] += dy[i] * x[i] * r;
        }
      } else {
        for (let i = 0; i < hd; i++) dqkv[base + i] = dy[i];
      }
    }
  }
  return { dqkv, dqw, dkw };
}

/** Standard RoPE tables cos/sin [seq, hd/2] for base theta (float32-rounded like the model's tables). */
export function ropeTables(seq: number, hd: number, theta: number): { cos: Vec; sin: Vec } {
  const half = hd / 2;
  const cos = new Float64Array(seq * half);
  const sin = new Float64Array(seq * half);
  for (let p = 0; p < seq; p++) {
    for (let i = 0; i < half; i++) {
      const a = p / theta ** ((2 * i) / hd);
      cos[p * half + i] = Math.fround(Math.cos(a));
      sin[p * half + i] = Math.fround(Math.sin(a));
    }
  }
  return { cos, sin };
}

// ---- causal attention with GQA ----

export interface AttnShape {
  batch: number;
  seq: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  scale: number;
  sq: number;
  sk: number;
  sv: number;
  /** Document masking: document starts over the flattened batch*seq tokens, then batch*seq. */
  cuSeqlens?: readonly number[];
}

/**
 * First key query (b, i) may attend: 0 (causal over the row), or with document bounds `cu` (cumulative sequence
 * lengths over the flattened tokens) the start of its document within the row.
 */
function firstKey(s: AttnShape, b: number, i: number): number {
  if (!s.cuSeqlens) return 0;
  const t = b * s.seq + i;
  let start = 0;
  for (const c of s.cuSeqlens) if (c <= t) start = c;
  return Math.max(0, start - b * s.seq);
}

/** Row i of probabilities over keys 0..i (zero before the query's first key). */
function probs(q: Vec, k: Vec, s: AttnShape, b: number, h: number): Vec[] {
  const g = s.heads / s.kvHeads;
  const kh = Math.floor(h / g);
  const rows: Vec[] = [];
  for (let i = 0; i < s.seq; i++) {
    const j0 = firstKey(s, b, i);
    const sc = new Float64Array(i + 1);
    let mx = -Infinity;
    for (let j = j0; j <= i; j++) {
      let dot = 0;
      for (let c = 0; c < s.headDim; c++) {
        dot += q[(b * s.seq + i) * s.sq + h * s.headDim + c] * k[(b * s.seq + j) * s.sk + kh * s.headDim + c];
      }
      sc[j] = dot * s.scale;
      mx = Math.max(mx, sc[j]);
    }
    let sum = 0;
    for (let j = j0; j <= i; j++) sum += Math.exp(sc[j] - mx);
    for (let j = 0; j <= i; j++) sc[j] = j < j0 ? 0 : Math.exp(sc[j] - mx) / sum;
    rows.push(sc);
  }
  return rows;
}

/** out [N, heads*hd] packed, lse [batch, heads, seq]. */
export function attentionRef(q: Vec, k: Vec, v: Vec, s: AttnShape): { out: Vec; lse: Vec } {
  const hd = s.headDim;
  const g = s.heads / s.kvHeads;
  const out = new Float64Array(s.batch * s.seq * s.heads * hd);
  const lse = new Float64Array(s.batch * s.heads * s.seq);
  for (let b = 0; b < s.batch; b++) {
    for (let h = 0; h < s.heads; h++) {
      const kh = Math.floor(h / g);
      for (let i = 0; i < s.seq; i++) {
        const j0 = firstKey(s, b, i);
        const sc: number[] = [];
        for (let j = j0; j <= i; j++) {
          let dot = 0;
          for (let c = 0; c < hd; c++) dot += q[(b * s.seq + i) * s.sq + h * hd + c] * k[(b * s.seq + j) * s.sk + kh * hd + c];
          sc.push(dot * s.scale);
        }
        const mx = Math.max(...sc);
        const sum = sc.reduce((a, x) => a + Math.exp(x - mx), 0);
        lse[(b * s.heads + h) * s.seq + i] = mx + Math.log(sum);
        for (let j = j0; j <= i; j++) {
          const p = Math.exp(sc[j - j0] - mx) / sum;
          for (let c = 0; c < hd; c++) out[(b * s.seq + i) * s.heads * hd + h * hd + c] += p * v[(b * s.seq + j) * s.sv + kh * hd + c];
        }
      }
    }
  }
  return { out, lse };
}

/** Gradients of sum(out * dout) w.r.t. q, k, v, in the strided layouts of q, k, v (other columns zero). */
export function attentionBackwardRef(
  dout: Vec, q: Vec, k: Vec, v: Vec, s: AttnShape,
): { dq: Vec; dk: Vec; dv: Vec } {
  const hd = s.headDim;
  const g = s.heads / s.kvHeads;
  const dq = new Float64Array(q.length);
  const dk = new Float64Array(k.length);
  const dv = new Float64Array(v.length);
  const od = s.heads * hd;
  for (let b = 0; b < s.batch; b++) {
    for (let h = 0; h < s.heads; h++) {
      const kh = Math.floor(h / g);
      const P = probs(q, k, s, b, h);
      for (let i = 0; i < s.seq; i++) {
        const j0 = firstKey(s, b, i);
        const dp = new Float64Array(i + 1);
        let dsum = 0;
        for (let j = j0; j <= i; j++) {
          let dot = 0;
          for (let c = 0; c < hd; c++) dot += dout[(b * s.seq + i) * od + h * hd + c] * v[(b * s.seq + j) * s.sv + kh * hd + c];
          dp[j] = dot;
          dsum += P[i][j] * dot;
        }
        for (let j = j0; j <= i; j++) {
          const ds = P[i][j] * (dp[j] - dsum) * s.scale;
          for (let c = 0; c < hd; c++) {
            dq[(b * s.seq + i) * s.sq + h * hd + c] += ds * k[(b * s.seq + j) * s.sk + kh * hd + c];
            dk[(b * s.seq + j) * s.sk + kh * hd + c] += ds * q[(b * s.seq + i) * s.sq + h * hd + c];
            dv[(b * s.seq + j) * s.sv + kh * hd + c] += P[i][j] * dout[(b * s.seq + i) * od + h * hd + c];
          }
        }
      }
    }
  }
  return { dq, dk, dv };
}

// ---- activations ----

export type ActKind = 'gelu' | 'gelu_tanh' | 'silu';

function erf(x: number): number {
  // Series / continued-fraction free: high-precision erf via the Abramowitz-Stegun 7.1.26 is too coarse for
  // 1e-5 checks, so use the Taylor series (|x| small) and the complementary asymptotic expansion otherwise.
  const ax = Math.abs(x);
  if (ax < 3) {
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 200; n++) {
      term *= (-ax * ax) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc via continued fraction (Lentz) for |x| >= 3.
  let f = ax;
  let c = ax;
  let dd = 0;
  for (let n = 1; n < 300; n++) {
    const an = n / 2;
    dd = ax + an * dd;
    dd = dd === 0 ? 1e-300 : 1 / dd;
    c = ax + an / c;
    const delta = c * dd;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

export function actRef(x: number, kind: ActKind): number {
  if (kind === 'silu') return x / (1 + Math.exp(-x));
  if (kind === 'gelu') return 0.5 * x * (1 + erf(x / Math.SQRT2));
  const k = Math.sqrt(2 / Math.PI);
  return 0.5 * x * (1 + Math.tanh(k * (x + 0.044715 * x ** 3)));
}

export function actGradRef(x: number, kind: ActKind): number {
  if (kind === 'silu') {
    const sg = 1 / (1 + Math.exp(-x));
    return sg * (1 + x * (1 - sg));
  }
  if (kind === 'gelu') return 0.5 * (1 + erf(x / Math.SQRT2)) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI);
  const k = Math.sqrt(2 / Math.PI);
  const t = Math.tanh(k * (x + 0.044715 * x ** 3));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x);
}

export function swigluRef(gu: Vec, rows: number, f: number): Vec {
  const out = new Float64Array(rows * f);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < f; j++) out[r * f + j] = actRef(gu[r * 2 * f + j], 'silu') * gu[r * 2 * f + f + j];
  }
  return out;
}

export function swigluBackwardRef(dout: Vec, gu: Vec, rows: number, f: number): Vec {
  const dgu = new Float64Array(rows * 2 * f);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < f; j++) {
      const g = gu[r * 2 * f + j];
      const u = gu[r * 2 * f + f + j];
      const d = dout[r * f + j];
      dgu[r * 2 * f + j] = d * u * actGradRef(g, 'silu');
      dgu[r * 2 * f + f + j] = d * actRef(g, 'silu');
    }
  }
  return dgu;
}

// ---- output head with cross-entropy ----

/** Loss sum over counted rows, logits, and the gradients of gradScale * loss. */
export function headCrossEntropyRef(
  h: Vec, w: Vec, targets: Int32Array, n: number, d: number, vocab: number, gradScale: number,
): { loss: number; logits: Vec; dh: Vec; dw: Vec } {
  const logits = matmulRef(h, w, n, vocab, d, false, true, d, d);
  const dh = new Float64Array(n * d);
  const dw = new Float64Array(vocab * d);
  let loss = 0;
  for (let r = 0; r < n; r++) {
    const t = targets[r];
    if (t === -100) continue;
    const row = logits.subarray(r * vocab, (r + 1) * vocab);
    let mx = -Infinity;
    for (const x of row) mx = Math.max(mx, x);
    let sum = 0;
    for (const x of row) sum += Math.exp(x - mx);
    const lse = mx + Math.log(sum);
    loss += lse - row[t];
    for (let j = 0; j < vocab; j++) {
      const g = (Math.exp(row[j] - lse) - (j === t ? 1 : 0)) * gradScale;
      for (let c = 0; c < d; c++) {
        dh[r * d + c] += g * w[j * d + c];
        dw[j * d + c] += g * h[r * d + c];
      }
    }
  }
  return { loss, logits, dh, dw };
}

// ---- optimizer ----

export interface AdamWRef {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  step: number;
  gradScale: number;
}

/** PyTorch's single-tensor AdamW, in place on p, m, v. */
export function adamwRef(p: Vec, g: Vec, m: Vec, v: Vec, hp: AdamWRef): void {
  const bc1 = 1 - hp.beta1 ** hp.step;
  const bc2 = 1 - hp.beta2 ** hp.step;
  const stepSize = hp.lr / bc1;
  const bc2Sqrt = Math.sqrt(bc2);
  for (let i = 0; i < p.length; i++) {
    const gr = g[i] * hp.gradScale;
    p[i] *= 1 - hp.lr * hp.weightDecay;
    m[i] += (gr - m[i]) * (1 - hp.beta1);
    v[i] = v[i] * hp.beta2 + (1 - hp.beta2) * gr * gr;
    const denom = Math.sqrt(v[i]) / bc2Sqrt + hp.eps;
    p[i] -= (stepSize * m[i]) / denom;
  }
}

// ---- checking helpers ----

/** max |a-b| / max(|b|_inf, floor): a relative error on the scale of the reference. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-30): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let diff = 0;
  let scale = floor;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

/**
 * Central-difference check of an analytic gradient of loss(x) = sum(f(x) * R): perturbs up to `samples`
 * coordinates of x in place (restoring them) and returns the worst relative error.
 */
export function fdCheck(x: Vec, loss: () => number, grad: Vec, r: () => number, samples = 40, h = 1e-5): number {
  let worst = 0;
  let scale = 1e-12;
  for (const g of grad) scale = Math.max(scale, Math.abs(g));
  const idx = x.length <= samples ? [...Array(x.length).keys()] : Array.from({ length: samples }, () => Math.floor(r() * x.length));
  for (const i of idx) {
    const keep = x[i];
    x[i] = keep + h;
    const up = loss();
    x[i] = keep - h;
    const down = loss();
    x[i] = keep;
    const fd = (up - down) / (2 * h);
    worst = Math.max(worst, Math.abs(fd - grad[i]) / scale);
  }
  return worst;
}

export function dot(a: Vec, b: Vec): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}
