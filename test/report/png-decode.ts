/** Test helper: a minimal PNG decoder (and an independent CRC-32 for it), to read back the charts' pixels. */
import assert from 'node:assert/strict';
import { inflateSync } from 'node:zlib';

/** Bitwise CRC-32, no table: an independent check of the encoder's table-driven one. */
export function crcSlow(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return (c ^ 0xffffffff) >>> 0;
}

export interface Decoded {
  width: number;
  height: number;
  colourType: number;
  /** RGB, 3 bytes per pixel (palette images expanded, alpha composited over white). */
  rgb: Uint8Array;
  chunks: string[];
}

/** A minimal PNG decoder for 8-bit RGB, RGBA and palette images, written from the spec: checks signature, chunk
 *  CRCs, IHDR fields, inflated size, and undoes all five scanline filters. RGBA is composited over white. */
export function decodePng(buf: Buffer): Decoded {
  assert.deepEqual([...buf.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10], 'PNG signature');
  let off = 8;
  const chunks: string[] = [];
  let ihdr: Buffer | null = null;
  let plte: Buffer | null = null;
  const idat: Buffer[] = [];
  while (off < buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('ascii', off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    assert.equal(buf.readUInt32BE(off + 8 + len), crcSlow(buf.subarray(off + 4, off + 8 + len)), `CRC of ${type}`);
    chunks.push(type);
    if (type === 'IHDR') ihdr = Buffer.from(data);
    else if (type === 'PLTE') plte = Buffer.from(data);
    else if (type === 'IDAT') idat.push(Buffer.from(data));
    off += 12 + len;
    if (type === 'IEND') break;
  }
  assert.equal(off, buf.length, 'nothing after IEND');
  assert.equal(chunks[0], 'IHDR');
  assert.equal(chunks[chunks.length - 1], 'IEND');
  assert.ok(ihdr && ihdr.length === 13);
  const width = ihdr.readUInt32BE(0), height = ihdr.readUInt32BE(4);
  const [depth, colourType, comp, filt, interlace] = [ihdr[8], ihdr[9], ihdr[10], ihdr[11], ihdr[12]];
  assert.equal(depth, 8);
  assert.ok(colourType === 2 || colourType === 3 || colourType === 6, `colour type ${colourType}`);
  assert.deepEqual([comp, filt, interlace], [0, 0, 0]);
  const bpp = colourType === 2 ? 3 : colourType === 6 ? 4 : 1;
  const stride = width * bpp;
  const raw = inflateSync(Buffer.concat(idat));
  assert.equal(raw.length, height * (stride + 1), 'inflated size');
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)]!;
    assert.ok(f <= 4, `filter type ${f}`);
    for (let i = 0; i < stride; i++) {
      const x = raw[y * (stride + 1) + 1 + i]!;
      const a = i >= bpp ? out[y * stride + i - bpp]! : 0;
      const b = y > 0 ? out[(y - 1) * stride + i]! : 0;
      const c = i >= bpp && y > 0 ? out[(y - 1) * stride + i - bpp]! : 0;
      let pred = 0;
      if (f === 1) pred = a;
      else if (f === 2) pred = b;
      else if (f === 3) pred = (a + b) >> 1;
      else if (f === 4) {
        const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      out[y * stride + i] = (x + pred) & 0xff;
    }
  }
  if (colourType === 2) return { width, height, colourType, rgb: out, chunks };
  if (colourType === 6) {
    const rgb = new Uint8Array(width * height * 3);
    for (let i = 0; i < width * height; i++) {
      const a = out[i * 4 + 3]! / 255;
      for (let c = 0; c < 3; c++) rgb[i * 3 + c] = Math.round(out[i * 4 + c]! * a + 255 * (1 - a));
    }
    return { width, height, colourType, rgb, chunks };
  }
  assert.ok(plte && plte.length % 3 === 0);
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < out.length; i++) {
    assert.ok(out[i]! * 3 < plte.length, 'palette index in range');
    rgb.set(plte.subarray(out[i]! * 3, out[i]! * 3 + 3), i * 3);
  }
  return { width, height, colourType, rgb, chunks };
}

