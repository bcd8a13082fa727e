import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GOLDEN_FIXTURES } from '../helpers.js';
import { fullDisk, shortWrites, temporariesUnder, withFault } from '../fs-faults.js';
import {
  SafetensorsError, bf16ToF32, f16BitsToNumber, f16ToF32, f32ToBf16, f32ToF16, readSafetensors, writeSafetensors,
} from '../../src/io/safetensors.js';

const GOLDEN = GOLDEN_FIXTURES;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lmforge-st-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
let fileNo = 0;
const tmpFile = () => path.join(tmp, `f${fileNo++}.safetensors`);

/** Random floats spanning many magnitudes (a tiny LCG so failures reproduce). */
function randomFloats(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const next = () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32; };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (next() < 0.5 ? -1 : 1) * next() * 2 ** Math.floor(next() * 60 - 30);
  return out;
}

/** Writes a file from a raw header object and data bytes, bypassing the writer (for corrupt-file tests). */
function rawFile(header: unknown, data: Uint8Array, headerText?: string): string {
  const json = Buffer.from(headerText ?? JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const f = tmpFile();
  fs.writeFileSync(f, Buffer.concat([len, json, data]));
  return f;
}

const expectError = (f: () => unknown, re: RegExp) =>
  assert.throws(f, (e: unknown) => e instanceof SafetensorsError && re.test(e.message) || assert.fail(String(e)));

test('bf16 and f16 decode known bit patterns', () => {
  const bf = bf16ToF32(new Uint16Array([0x3f80, 0xc000, 0x7f80, 0xff80, 0x0001, 0x3e80, 0x0000, 0x8000]));
  assert.deepEqual([...bf].slice(0, 4), [1, -2, Infinity, -Infinity]);
  assert.equal(bf[4], 2 ** -133);
  assert.equal(bf[5], 0.25);
  assert.ok(Object.is(bf[7], -0));
  assert.ok(Number.isNaN(bf16ToF32(new Uint16Array([0x7fc0]))[0]));
  const h = f16ToF32(new Uint16Array([0x3c00, 0x7bff, 0x0001, 0x0400, 0x8000, 0x7c00, 0xc000, 0x3555]));
  assert.deepEqual([...h].slice(0, 4), [1, 65504, 2 ** -24, 2 ** -14]);
  assert.ok(Object.is(h[4], -0));
  assert.deepEqual([h[5], h[6]], [Infinity, -2]);
  assert.equal(h[7], Math.fround(0.333251953125));
  assert.ok(Number.isNaN(f16BitsToNumber(0x7e00)));
});

test('every bf16 and f16 bit pattern round-trips through float32', () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const bf = f32ToBf16(bf16ToF32(all));
  const hf = f32ToF16(f16ToF32(all));
  for (let i = 0; i < 65536; i++) {
    const bfNaN = (i & 0x7f80) === 0x7f80 && (i & 0x7f) !== 0;
    if (bfNaN) assert.ok((bf[i]! & 0x7f80) === 0x7f80 && (bf[i]! & 0x7f) !== 0, `bf16 NaN ${i}`);
    else assert.equal(bf[i], i, `bf16 ${i.toString(16)}`);
    const hNaN = (i & 0x7c00) === 0x7c00 && (i & 0x3ff) !== 0;
    if (hNaN) assert.ok((hf[i]! & 0x7c00) === 0x7c00 && (hf[i]! & 0x3ff) !== 0, `f16 NaN ${i}`);
    else assert.equal(hf[i], i, `f16 ${i.toString(16)}`);
  }
});

/** Plain reference rounding: nearest representable value among all 65536 patterns, ties to the even pattern. */
function nearestPattern(x: number, decode: (bits: number) => number, maxFinite: number, infBits: number): number {
  if (Number.isNaN(x)) return -1;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  // Values past the last finite one by at least half an ulp round to infinity.
  let best = -1, bestD = Infinity;
  for (let b = 0; b < 0x8000; b++) {
    const v = decode(b);
    if (!Number.isFinite(v)) continue;
    const d = Math.abs(v - a);
    if (d < bestD || (d === bestD && (b & 1) === 0)) { best = b; bestD = d; }
  }
  const top = decode(maxFinite), next = decode(maxFinite - 1);
  if (a >= top + (top - next) / 2 && !(a === top + (top - next) / 2 && (maxFinite & 1) === 0)) return sign | infBits;
  return sign | best;
}

test('float32 -> bf16 / f16 rounding matches a brute-force nearest-even reference', () => {
  const xs = randomFloats(300, 7);
  // Exact ties and edge cases: halfway between f16 1 and its neighbour, tiny subnormals, overflow.
  const extra = [1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -25, 3 * 2 ** -26, 2 ** -26, 65519, 65520, 1e6, -1e-8, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 3.4e38];
  const all = Float32Array.from([...xs, ...extra]);
  const bf = f32ToBf16(all), hf = f32ToF16(all);
  // Infinity stands for 2^128 when measuring distance (IEEE overflow rounding).
  const bfDecode = (b: number) => { const v = bf16ToF32(new Uint16Array([b]))[0]!; return Number.isFinite(v) ? v : Math.sign(v) * 2 ** 128; };
  for (let i = 0; i < all.length; i++) {
    assert.equal(hf[i], nearestPattern(all[i]!, f16BitsToNumber, 0x7bff, 0x7c00), `f16 of ${all[i]}`);
    // bf16 reference: the only candidates are the truncation and the next pattern up.
    const u = new Uint32Array(Float32Array.of(all[i]!).buffer)[0]!;
    const lo = u >>> 16, hi = lo + 1;
    const dl = Math.abs(bfDecode(lo) - all[i]!), dh = Math.abs(bfDecode(hi) - all[i]!);
    const want = dl < dh || (dl === dh && (lo & 1) === 0) ? lo : hi;
    assert.equal(bf[i], want, `bf16 of ${all[i]}`);
  }
  assert.equal(hf[all.length - 7], 0x7bff); // 65519 rounds down to 65504
  assert.equal(hf[all.length - 6], 0x7c00); // 65520 rounds to infinity
  assert.equal(bf[all.length - 1], 0x7f80); // 3.4e38 is past max bf16 + half an ulp
  assert.equal(hf[xs.length], 0x3c00); // tie to even
  assert.equal(hf[xs.length + 1], 0x3c02);
});

test('write then read every writable dtype; metadata; alignment; layout', () => {
  const f = tmpFile();
  const w = randomFloats(6 * 5, 1);
  const d = Float64Array.from(randomFloats(7, 2), (x) => x * Math.PI);
  const ids = new BigInt64Array([0n, 151643n, -100n, 9007199254740993n]);
  writeSafetensors(f, [
    { name: 'bf', dtype: 'BF16', shape: [3], data: Float32Array.of(1, -2.5, 3.140625) },
    { name: 'w', dtype: 'F32', shape: [6, 5], data: w },
    { name: 'ids', dtype: 'I64', shape: [2, 2], data: ids },
    { name: 'small', dtype: 'I32', shape: [3], data: Int32Array.of(-1, 0, 7) },
    { name: 'd', dtype: 'F64', shape: [7], data: d },
    { name: 'h', dtype: 'F16', shape: [2], data: Float32Array.of(0.5, -65504) },
    { name: 'empty', dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
    { name: 'scalar', dtype: 'F32', shape: [], data: Float32Array.of(42) },
    { name: 'wide', dtype: 'I64', shape: [2], data: Int32Array.of(5, -6) },
  ], { format: 'pt', note: 'x' });
  const st = readSafetensors(f);
  try {
    assert.deepEqual(st.metadata, { format: 'pt', note: 'x' });
    assert.equal(st.dataOffset % 8, 0);
    // Widest dtype first: every tensor starts aligned to its element size.
    for (const n of st.names()) {
      const t = st.info(n);
      assert.equal(t.begin % (t.end > t.begin ? (t.end - t.begin) / t.numel : 1), 0, n);
    }
    assert.deepEqual(st.toFloat32('w'), w);
    assert.deepEqual(st.info('w').shape, [6, 5]);
    assert.deepEqual(st.toFloat64('d'), d);
    assert.deepEqual(st.toFloat32('d'), Float32Array.from(d));
    assert.deepEqual(st.toBigInt64('ids'), ids);
    assert.deepEqual([...st.toFloat32('bf')], [1, -2.5, 3.140625]);
    assert.deepEqual([...st.toFloat32('h')], [0.5, -65504]);
    assert.deepEqual(st.toInt32('small'), Int32Array.of(-1, 0, 7));
    assert.deepEqual(st.toInt32('wide'), Int32Array.of(5, -6));
    assert.deepEqual([...st.toFloat32('small')], [-1, 0, 7]);
    assert.equal(st.toFloat32('empty').length, 0);
    assert.deepEqual(st.info('scalar').shape, []);
    assert.deepEqual([...st.toFloat32('scalar')], [42]);
    expectError(() => st.toInt32('ids'), /element 3 = 9007199254740992 does not fit in int32|element 3 = 9007199254740993 does not fit in int32/);
    expectError(() => st.toInt32('w'), /is F32, not an integer type/);
    expectError(() => st.info('nope'), /no tensor named 'nope'/);
  } finally {
    st.close();
  }
  // The header is padded with spaces to a multiple of 8 and the file size is exact.
  const bytes = fs.readFileSync(f);
  const n = Number(bytes.readBigUInt64LE(0));
  assert.equal(n % 8, 0);
  const json = bytes.subarray(8, 8 + n).toString();
  assert.match(json, /^\{.*\} *$/);
  assert.equal(bytes.length, 8 + n + 30 * 4 + 7 * 8 + 4 * 8 + 2 * 8 + 3 * 4 + 3 * 2 + 2 * 2 + 4);
  // No temporary files are left beside it.
  assert.deepEqual(fs.readdirSync(tmp).filter((x) => x.includes('.tmp-')), []);
});

test('writer rejects bad input and leaves no file behind', () => {
  const f = tmpFile();
  expectError(() => writeSafetensors(f, [{ name: 'a', dtype: 'F32', shape: [2, 3], data: new Float32Array(5) }]), /shape \[2, 3\] has 6 elements but the data has 5/);
  expectError(() => writeSafetensors(f, [{ name: 'a', dtype: 'I32', shape: [1], data: new Float32Array(1) }]), /dtype I32 needs data as Int32Array, got Float32Array/);
  expectError(() => writeSafetensors(f, [
    { name: 'a', dtype: 'F32', shape: [1], data: new Float32Array(1) }, { name: 'a', dtype: 'F32', shape: [1], data: new Float32Array(1) },
  ]), /tensor 'a' is given twice/);
  assert.equal(fs.existsSync(f), false);
  assert.deepEqual(fs.readdirSync(tmp).filter((x) => x.includes('.tmp-')), []);
});

test('reads the golden files written by the reference safetensors library', () => {
  const m = readSafetensors(`${GOLDEN}/gpt2-tiny/model.safetensors`);
  const e = readSafetensors(`${GOLDEN}/gpt2-tiny/expected.safetensors`);
  try {
    assert.deepEqual(m.info('transformer.wte.weight').shape, [320, 64]);
    assert.equal(m.info('transformer.wte.weight').dtype, 'F32');
    const wte = m.toFloat32('transformer.wte.weight');
    assert.equal(wte.length, 320 * 64);
    assert.ok(wte.every(Number.isFinite));
    assert.deepEqual(e.info('input_ids').shape, [2, 12]);
    const ids = e.toInt32('input_ids');
    assert.ok(ids.every((x) => x >= 0 && x < 320));
    const labels = e.toInt32('labels');
    assert.ok(labels.every((x) => x === -100 || (x >= 0 && x < 320)));
    const loss = e.toFloat64('loss');
    assert.ok(Math.abs(loss[0]! - 5.829214096069336) < 1e-6, String(loss[0]));
    assert.equal(e.info('loss').dtype, 'F64');
  } finally {
    m.close();
    e.close();
  }
});

test('clear errors for malformed files', () => {
  const tiny = tmpFile();
  fs.writeFileSync(tiny, Buffer.from([1, 2, 3]));
  expectError(() => readSafetensors(tiny), /has 3 bytes, fewer than the 8-byte header length/);

  const longHeader = tmpFile();
  const b = Buffer.alloc(20);
  b.writeBigUInt64LE(1000n);
  fs.writeFileSync(longHeader, b);
  expectError(() => readSafetensors(longHeader), /header length field says 1000 bytes but only 12 bytes follow it: the file is truncated/);

  expectError(() => readSafetensors(rawFile(null, new Uint8Array(0), 'not json at all')), /header is not a JSON object/);
  expectError(() => readSafetensors(rawFile(null, new Uint8Array(0), '{"a": ')), /header is not a JSON object/);

  const data = new Uint8Array(16);
  expectError(() => readSafetensors(rawFile({ x: { dtype: 'F4', shape: [4], data_offsets: [0, 16] } }, data)),
    /tensor 'x' has unknown dtype "F4"; known: F64, F32/);
  expectError(() => readSafetensors(rawFile({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 16] } }, data)),
    /shape \[3\] of F32 needs 12 bytes but data_offsets \[0, 16\] span 16/);
  expectError(() => readSafetensors(rawFile({
    a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
  }, data)), /tensors 'a' \[0, 8\) and 'b' \[4, 12\) overlap/);
  expectError(() => readSafetensors(rawFile({
    a: { dtype: 'F32', shape: [2], data_offsets: [8, 16] }, b: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
  }, data)), /4 unused bytes before tensor 'a'/);
  expectError(() => readSafetensors(rawFile({ a: { dtype: 'F32', shape: [8], data_offsets: [0, 32] } }, data)),
    /tensor 'a' ends at byte \d+ but the file has \d+ bytes: the file is truncated; re-download or re-export it/);
  expectError(() => readSafetensors(rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, data)),
    /8 bytes follow the last tensor/);
  expectError(() => readSafetensors(rawFile({ a: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, data)),
    /shape \[-2\] is not a list of non-negative integers/);
  expectError(() => readSafetensors(path.join(tmp, 'missing.safetensors')), /cannot open \(ENOENT\)/);

  // A real file cut short is reported as truncated, naming a tensor.
  const good = tmpFile();
  writeSafetensors(good, [{ name: 'w', dtype: 'F32', shape: [100], data: new Float32Array(100) }]);
  const cut = tmpFile();
  fs.writeFileSync(cut, fs.readFileSync(good).subarray(0, fs.statSync(good).size - 10));
  expectError(() => readSafetensors(cut), /tensor 'w' ends at byte \d+ but the file has \d+ bytes: the file is truncated/);
});

test('a full disk: the error names the file and the fix, and nothing is left under the final name or a temporary one', () => {
  const f = tmpFile();
  const data = randomFloats(50_000, 3);
  assert.throws(
    () => withFault(() => fullDisk(100_000), () => writeSafetensors(f, [{ name: 'w', dtype: 'F32', shape: [data.length], data }])),
    (e: Error) => e.message.startsWith(f) && /no space left.*ENOSPC/.test(e.message),
  );
  assert.ok(!fs.existsSync(f));
  assert.deepEqual(temporariesUnder(tmp), []);
  // Short writes (no error): the file is whole.
  withFault(shortWrites, () => writeSafetensors(f, [{ name: 'w', dtype: 'F32', shape: [data.length], data }]));
  const st = readSafetensors(f);
  assert.deepEqual(st.toFloat32('w'), data);
  st.close();
});
