import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32, encodePngRgb, encodePngIndexed } from '../../src/report/png.js';
import { crcSlow, decodePng } from './png-decode.js';

function randomBytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    b[i] = s >>> 24;
  }
  return b;
}

test('crc32 matches the standard check value and a bitwise reference', () => {
  assert.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
  const r = randomBytes(1000, 7);
  assert.equal(crc32(r), crcSlow(r));
  assert.equal(crc32(r.subarray(500), crc32(r.subarray(0, 500))), crc32(r)); // incremental
});

test('RGB images round-trip through an independent decoder (noise, gradients, flat)', () => {
  const cases: Array<[number, number, (i: number) => number]> = [
    [37, 23, () => 0],
    [64, 48, (i) => (i * 7) & 0xff],
    [1, 1, () => 200],
  ];
  for (const [w, h, f] of cases) {
    const px = Uint8Array.from({ length: w * h * 3 }, (_, i) => f(i));
    const d = decodePng(encodePngRgb(w, h, px));
    assert.deepEqual([d.width, d.height, d.colourType], [w, h, 2]);
    assert.deepEqual(d.chunks, ['IHDR', 'IDAT', 'IEND']);
    assert.deepEqual(d.rgb, px);
  }
  const noise = randomBytes(101 * 57 * 3, 42);
  assert.deepEqual(decodePng(encodePngRgb(101, 57, noise)).rgb, noise);
});

test('palette images round-trip and bad inputs are refused', () => {
  const palette = Uint8Array.from([255, 255, 255, 0, 0, 0, 31, 119, 180]);
  const idx = Uint8Array.from(randomBytes(40 * 30, 3), (v) => v % 3);
  const d = decodePng(encodePngIndexed(40, 30, idx, palette));
  assert.deepEqual(d.chunks, ['IHDR', 'PLTE', 'IDAT', 'IEND']);
  for (let i = 0; i < idx.length; i++) assert.deepEqual([...d.rgb.subarray(i * 3, i * 3 + 3)], [...palette.subarray(idx[i]! * 3, idx[i]! * 3 + 3)]);
  assert.throws(() => encodePngIndexed(2, 1, Uint8Array.from([0, 3]), palette), /pixel 1 uses colour 3 but the palette has 3/);
  assert.throws(() => encodePngRgb(2, 2, new Uint8Array(11)), /holds 11 bytes but 2 x 2 needs 12/);
  assert.throws(() => encodePngRgb(0, 2, new Uint8Array(0)), /positive integers/);
});
