/**
 * RoPE tables in the half-split form transformers uses. Frequencies and angles are computed in float32 exactly as
 * transformers does (inv_freq = 1 / theta^(2i/d) in float32, angle = float32(position * inv_freq)), so positions
 * far into a long context rotate by the same angles as the reference, not by more precise ones.
 */
export function ropeInvFreq(theta: number, headDim: number): Float32Array {
  const half = headDim / 2;
  const out = new Float32Array(half);
  const base = Math.fround(theta);
  for (let i = 0; i < half; i++) {
    const exponent = Math.fround(Math.fround(2 * i) / headDim);
    out[i] = Math.fround(1 / Math.fround(Math.pow(base, exponent)));
  }
  return out;
}

/** cos and sin tables [seq, headDim/2] for positions 0..seq-1. */
export function ropeTables(theta: number, headDim: number, seq: number, start = 0): { cos: Float32Array; sin: Float32Array } {
  const inv = ropeInvFreq(theta, headDim);
  const half = headDim / 2;
  const cos = new Float32Array(seq * half);
  const sin = new Float32Array(seq * half);
  for (let t = 0; t < seq; t++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(Math.fround(start + t) * inv[i]!);
      cos[t * half + i] = Math.cos(angle);
      sin[t * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}
