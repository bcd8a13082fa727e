/**
 * A dependency-free PNG encoder (PNG spec, ISO/IEC 15948): 8-bit truecolour (RGB) or 8-bit palette images,
 * one IDAT chunk compressed with node:zlib. Each scanline uses the filter (None, Sub, Up) that gives the smallest
 * sum of absolute differences, the usual heuristic; plots compress to a few tens of kilobytes.
 */
import { deflateSync } from 'node:zlib';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const CRC_TABLE = ((): Uint32Array => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) as PNG chunks use it. */
export function crc32(data: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'ascii');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** Filters each scanline (bpp bytes per pixel) and prefixes its filter byte. */
function filterScanlines(raw: Uint8Array, width: number, height: number, bpp: number): Buffer {
  const stride = width * bpp;
  const out = Buffer.alloc(height * (stride + 1));
  const cand = [new Uint8Array(stride), new Uint8Array(stride), new Uint8Array(stride)];
  for (let y = 0; y < height; y++) {
    const row = raw.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? raw.subarray((y - 1) * stride, y * stride) : null;
    let best = 0;
    let bestCost = Infinity;
    for (let f = 0; f < 3; f++) {
      const c = cand[f]!;
      let cost = 0;
      for (let i = 0; i < stride; i++) {
        const left = i >= bpp ? row[i - bpp]! : 0;
        const up = prev ? prev[i]! : 0;
        const v = (row[i]! - (f === 0 ? 0 : f === 1 ? left : up)) & 0xff;
        c[i] = v;
        cost += v < 128 ? v : 256 - v;
      }
      if (cost < bestCost) {
        bestCost = cost;
        best = f;
      }
    }
    out[y * (stride + 1)] = best; // 0 None, 1 Sub, 2 Up
    out.set(cand[best]!, y * (stride + 1) + 1);
  }
  return out;
}

function ihdr(width: number, height: number, colourType: 2 | 3): Buffer {
  const b = Buffer.alloc(13);
  b.writeUInt32BE(width, 0);
  b.writeUInt32BE(height, 4);
  b[8] = 8; // bit depth
  b[9] = colourType;
  b[10] = 0; // deflate
  b[11] = 0; // adaptive filtering
  b[12] = 0; // no interlace
  return b;
}

function checkSize(width: number, height: number, have: number, perPixel: number, what: string): void {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0 && width < 2 ** 31 && height < 2 ** 31))
    throw new RangeError(`PNG: width and height must be positive integers, got ${width} x ${height}`);
  if (have !== width * height * perPixel)
    throw new RangeError(`PNG: ${what} holds ${have} bytes but ${width} x ${height} needs ${width * height * perPixel}`);
}

/** RGB image, rows top to bottom, 3 bytes per pixel. */
export function encodePngRgb(width: number, height: number, rgb: Uint8Array): Buffer {
  checkSize(width, height, rgb.length, 3, 'the RGB buffer');
  const idat = deflateSync(filterScanlines(rgb, width, height, 3), { level: 9 });
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr(width, height, 2)), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))]);
}

/** Palette image: one index byte per pixel into `palette` (RGB triples, at most 256 colours). */
export function encodePngIndexed(width: number, height: number, indices: Uint8Array, palette: Uint8Array): Buffer {
  checkSize(width, height, indices.length, 1, 'the index buffer');
  if (palette.length === 0 || palette.length % 3 !== 0 || palette.length > 768)
    throw new RangeError(`PNG: the palette must hold 1-256 RGB triples, got ${palette.length} bytes`);
  const colours = palette.length / 3;
  for (let i = 0; i < indices.length; i++)
    if (indices[i]! >= colours) throw new RangeError(`PNG: pixel ${i} uses colour ${indices[i]} but the palette has ${colours}`);
  const idat = deflateSync(filterScanlines(indices, width, height, 1), { level: 9 });
  return Buffer.concat([
    SIGNATURE,
    chunk('IHDR', ihdr(width, height, 3)),
    chunk('PLTE', palette),
    chunk('IDAT', idat),
    chunk('IEND', new Uint8Array(0)),
  ]);
}
