/** A plain reference for bf16 rounding, shared by the bf16 tests. */

/**
 * The bf16 value nearest to x (ties to the even mantissa), found by comparing the two bf16 neighbours in float64:
 * no bit tricks, so it checks the engines' bit-level rounding independently. NaN stays NaN; beyond the largest
 * bf16 value the rounding goes to infinity as IEEE round-to-nearest does.
 */
export function bf16Reference(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (!Number.isFinite(x) || x === 0) return x;
  const f = Math.fround(x);
  const bits = new Uint32Array(new Float32Array([f]).buffer)[0]!;
  const lowBits = bits & 0xffff0000;
  const toFloat = (b: number) => new Float32Array(new Uint32Array([b >>> 0]).buffer)[0]!;
  const lo = toFloat(lowBits); // toward zero
  const hi = toFloat(lowBits + 0x10000); // away from zero (may be infinity)
  // Past the largest finite value, infinity stands where 2^128 would be (IEEE's rounding to infinity).
  const hiAt = Number.isFinite(hi) ? hi : Math.sign(f) * 2 ** 128;
  const dLo = Math.abs(f - lo), dHi = Math.abs(hiAt - f);
  if (dLo < dHi) return lo;
  if (dHi < dLo) return hi;
  return ((lowBits >>> 16) & 1) === 0 ? lo : hi;
}
