/**
 * The safetensors format: an 8-byte little-endian header length N, N bytes of JSON
 * ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}), then the tensor bytes,
 * offsets relative to the end of the header. Tensors must tile the data exactly (no holes, no overlap), as the
 * reference implementation requires.
 *
 * Reading keeps the file open and reads one tensor at a time, so a multi-gigabyte checkpoint never sits in
 * memory whole. Writing goes through files/atomic.ts (temporary name, every byte, fsync, rename), so a crash or a
 * full disk never leaves half a file under the final name.
 */
import * as fs from 'node:fs';
import { AtomicFile } from '../files/atomic.js';

export type SafetensorsDType =
  | 'F64' | 'F32' | 'F16' | 'BF16' | 'F8_E4M3' | 'F8_E5M2'
  | 'I64' | 'I32' | 'I16' | 'I8' | 'U64' | 'U32' | 'U16' | 'U8' | 'BOOL';

export const DTYPE_BYTES: Readonly<Record<SafetensorsDType, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, F8_E4M3: 1, F8_E5M2: 1,
  I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1,
};

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

/** Largest header the reference implementation accepts (100 MB). */
const MAX_HEADER_BYTES = 100_000_000;
/** fs.readSync moves at most 2 GiB per call; stay well below. */
const IO_CHUNK = 1 << 30;

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  numel: number;
  /** Byte range inside the data section (after the header). */
  begin: number;
  end: number;
}

export interface SafetensorsFile {
  readonly path: string;
  /** Tensor names in file (offset) order (a fresh array). */
  names(): string[];
  readonly metadata: Readonly<Record<string, string>>;
  /** Byte offset of the data section in the file (8 + header length). */
  readonly dataOffset: number;
  has(name: string): boolean;
  info(name: string): TensorInfo;
  /** The tensor's raw little-endian bytes (a fresh, 8-byte-aligned buffer). */
  raw(name: string): Uint8Array;
  /** Converts F32/F16/BF16/F64/F8 (and integer/bool types) to float32. */
  toFloat32(name: string): Float32Array;
  /** F64 exactly; other float types widened. */
  toFloat64(name: string): Float64Array;
  /** Integer tensors (I8..I64, U8..U32, BOOL) as int32; an I64/U32/U64 value outside int32 is an error. */
  toInt32(name: string): Int32Array;
  /** Integer tensors as int64. */
  toBigInt64(name: string): BigInt64Array;
  close(): void;
}

// ---------------------------------------------------------------------------------------------------------------
// 16-bit float conversions
// ---------------------------------------------------------------------------------------------------------------

const convF32 = new Float32Array(1);
const convU32 = new Uint32Array(convF32.buffer);

/** bf16 bit patterns to float32 (exact: bf16 is the top half of a float32). */
export function bf16ToF32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const u = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) u[i] = bits[i]! << 16;
  return out;
}

/** float32 to bf16 bit patterns, round to nearest even; NaN stays NaN (quiet), overflow rounds to infinity. */
export function f32ToBf16(x: Float32Array): Uint16Array {
  const out = new Uint16Array(x.length);
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  for (let i = 0; i < x.length; i++) {
    const b = u[i]!;
    if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) out[i] = (b >>> 16) | 0x40;
    else out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return out;
}

/** One IEEE half to float. */
export function f16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

export function f16ToF32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = f16BitsToNumber(bits[i]!);
  return out;
}

/** One float32 (given as a number; rounded to float32 first) to IEEE half bits, round to nearest even. */
export function numberToF16Bits(v: number): number {
  convF32[0] = v;
  const b = convU32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // Half subnormal: value / 2^-24, from the 24-bit significand.
    if (e < -10) return sign;
    const full = mant | 0x800000;
    const shift = 14 - e;
    let m = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (m & 1) === 1)) m++;
    return sign | m;
  }
  let out = sign | (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (out & 1) === 1)) out++; // a carry into the exponent is correct rounding
  return out;
}

export function f32ToF16(x: Float32Array): Uint16Array {
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = numberToF16Bits(x[i]!);
  return out;
}

/** float8 e4m3fn (bias 7, no infinities, S.1111.111 = NaN) to float. */
function e4m3ToNumber(b: number): number {
  const sign = b & 0x80 ? -1 : 1;
  const exp = (b >>> 3) & 0xf, mant = b & 7;
  if (exp === 15 && mant === 7) return NaN;
  if (exp === 0) return sign * mant * 2 ** -9;
  return sign * (8 + mant) * 2 ** (exp - 10);
}

// ---------------------------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------------------------

function isDType(s: string): s is SafetensorsDType {
  return Object.hasOwn(DTYPE_BYTES, s);
}

function readFully(fd: number, into: Uint8Array, position: number, what: string): void {
  let done = 0;
  while (done < into.length) {
    const n = fs.readSync(fd, into, done, Math.min(IO_CHUNK, into.length - done), position + done);
    if (n === 0) throw new SafetensorsError(`${what}: unexpected end of file after ${position + done} bytes (was the file truncated while open?)`);
    done += n;
  }
}

/** Parses and checks a header; `dataBytes` is the size of the data section. Exported for tests and tools. */
export function parseSafetensorsHeader(
  json: string, dataBytes: number, source: string, headerLen: number,
): { tensors: TensorInfo[]; metadata: Record<string, string> } {
  const trimmed = json.trimStart();
  let parsed: unknown;
  try {
    if (!trimmed.startsWith('{')) throw new Error(`it starts with ${JSON.stringify(trimmed.slice(0, 16))}`);
    parsed = JSON.parse(json);
  } catch (e) {
    throw new SafetensorsError(
      `${source}: the ${headerLen}-byte header is not a JSON object (${(e as Error).message}): not a safetensors file, or it is corrupt`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new SafetensorsError(`${source}: the header is JSON but not an object: not a safetensors file`);
  const metadata: Record<string, string> = {};
  const tensors: TensorInfo[] = [];
  for (const [name, v] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (v === null || typeof v !== 'object' || Array.isArray(v))
        throw new SafetensorsError(`${source}: "__metadata__" must be an object of strings`);
      for (const [k, mv] of Object.entries(v as Record<string, unknown>)) metadata[k] = typeof mv === 'string' ? mv : JSON.stringify(mv);
      continue;
    }
    const where = `${source}: tensor '${name}'`;
    if (v === null || typeof v !== 'object') throw new SafetensorsError(`${where}: entry is not an object`);
    const e = v as Record<string, unknown>;
    const dtype = e['dtype'];
    if (typeof dtype !== 'string' || !isDType(dtype))
      throw new SafetensorsError(`${where} has unknown dtype ${JSON.stringify(dtype)}; known: ${Object.keys(DTYPE_BYTES).join(', ')}`);
    const shape = e['shape'];
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw new SafetensorsError(`${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    const off = e['data_offsets'];
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0) || off[0] > off[1])
      throw new SafetensorsError(`${where}: data_offsets ${JSON.stringify(off)} must be [begin, end] with 0 <= begin <= end`);
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    const span = (off[1] as number) - (off[0] as number);
    if (numel * DTYPE_BYTES[dtype] !== span)
      throw new SafetensorsError(
        `${where}: shape [${shape.join(', ')}] of ${dtype} needs ${numel * DTYPE_BYTES[dtype]} bytes but data_offsets ` +
        `[${off[0]}, ${off[1]}] span ${span}: the header is inconsistent; re-export the file`);
    tensors.push({ name, dtype, shape: shape as number[], numel, begin: off[0] as number, end: off[1] as number });
  }
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let prev: TensorInfo | null = null;
  for (const t of tensors) {
    const prevEnd = prev ? prev.end : 0;
    if (t.begin < prevEnd)
      throw new SafetensorsError(
        `${source}: tensors '${prev!.name}' [${prev!.begin}, ${prev!.end}) and '${t.name}' [${t.begin}, ${t.end}) overlap: the header is corrupt`);
    if (t.end > dataBytes) {
      const fileEnd = 8 + headerLen + t.end, fileSize = 8 + headerLen + dataBytes;
      throw new SafetensorsError(
        `${source}: tensor '${t.name}' ends at byte ${fileEnd} but the file has ${fileSize} bytes: ` +
        `the file is truncated; re-download or re-export it`);
    }
    if (t.begin > prevEnd)
      throw new SafetensorsError(
        `${source}: ${t.begin - prevEnd} unused bytes before tensor '${t.name}' (data offset ${prevEnd}): tensors must be contiguous; the header is corrupt`);
    prev = t;
  }
  const used = prev ? prev.end : 0;
  if (used !== dataBytes)
    throw new SafetensorsError(
      `${source}: ${dataBytes - used} bytes follow the last tensor (data section ${dataBytes} bytes, tensors cover ${used}): ` +
      `the file is corrupt or was appended to`);
  return { tensors, metadata };
}

/** Opens a safetensors file, checks its header against its size, and gives lazy access to each tensor. */
export function readSafetensors(file: string): SafetensorsFile {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw new SafetensorsError(`${file}: cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size < 8)
      throw new SafetensorsError(`${file}: the file has ${size} bytes, fewer than the 8-byte header length: not a safetensors file, or truncated`);
    const lenBuf = new Uint8Array(8);
    readFully(fd, lenBuf, 0, file);
    const len64 = new DataView(lenBuf.buffer).getBigUint64(0, true);
    if (len64 > BigInt(size - 8))
      throw new SafetensorsError(
        `${file}: the header length field says ${len64} bytes but only ${size - 8} bytes follow it: ` +
        `the file is truncated or not a safetensors file`);
    const headerLen = Number(len64);
    if (headerLen > MAX_HEADER_BYTES)
      throw new SafetensorsError(`${file}: header of ${headerLen} bytes exceeds the ${MAX_HEADER_BYTES}-byte limit: not a safetensors file`);
    const hdr = new Uint8Array(headerLen);
    readFully(fd, hdr, 8, file);
    let json: string;
    try {
      json = new TextDecoder('utf-8', { fatal: true }).decode(hdr);
    } catch {
      throw new SafetensorsError(`${file}: the header is not valid UTF-8: not a safetensors file, or it is corrupt`);
    }
    const dataOffset = 8 + headerLen;
    const { tensors, metadata } = parseSafetensorsHeader(json, size - dataOffset, file, headerLen);
    return openedFile(file, fd, dataOffset, tensors, metadata);
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

function openedFile(
  file: string, fd: number, dataOffset: number, tensors: TensorInfo[], metadata: Record<string, string>,
): SafetensorsFile {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  let open = true;
  const info = (name: string): TensorInfo => {
    const t = byName.get(name);
    if (!t) throw new SafetensorsError(`${file}: no tensor named '${name}' (it holds ${tensors.length} tensors)`);
    return t;
  };
  const raw = (name: string): Uint8Array => {
    if (!open) throw new SafetensorsError(`${file}: read of '${name}' after close()`);
    const t = info(name);
    // A fresh ArrayBuffer is 8-byte aligned, so any typed-array view of it is valid.
    const buf = new Uint8Array(new ArrayBuffer(t.end - t.begin));
    readFully(fd, buf, dataOffset + t.begin, `${file}: tensor '${name}'`);
    return buf;
  };
  const ints = (name: string, bytes?: ArrayBufferLike): { t: TensorInfo; get: (i: number) => bigint | number } => {
    const t = info(name);
    const b = bytes ?? raw(name).buffer;
    switch (t.dtype) {
      case 'I64': { const a = new BigInt64Array(b); return { t, get: (i) => a[i]! }; }
      case 'U64': { const a = new BigUint64Array(b); return { t, get: (i) => a[i]! }; }
      case 'I32': { const a = new Int32Array(b); return { t, get: (i) => a[i]! }; }
      case 'U32': { const a = new Uint32Array(b); return { t, get: (i) => a[i]! }; }
      case 'I16': { const a = new Int16Array(b); return { t, get: (i) => a[i]! }; }
      case 'U16': { const a = new Uint16Array(b); return { t, get: (i) => a[i]! }; }
      case 'I8': { const a = new Int8Array(b); return { t, get: (i) => a[i]! }; }
      case 'U8': case 'BOOL': { const a = new Uint8Array(b); return { t, get: (i) => a[i]! }; }
      default:
        throw new SafetensorsError(`${file}: tensor '${name}' is ${t.dtype}, not an integer type; use toFloat32()`);
    }
  };
  const floats = (name: string): ArrayLike<number> => {
    const t = info(name);
    const b = raw(name).buffer;
    switch (t.dtype) {
      case 'F32': return new Float32Array(b);
      case 'F64': return new Float64Array(b);
      case 'BF16': return bf16ToF32(new Uint16Array(b));
      case 'F16': return f16ToF32(new Uint16Array(b));
      case 'F8_E5M2': { const u = new Uint8Array(b); return Float32Array.from(u, (x) => f16BitsToNumber(x << 8)); }
      case 'F8_E4M3': { const u = new Uint8Array(b); return Float32Array.from(u, e4m3ToNumber); }
      default: {
        const { get } = ints(name, b);
        return Float64Array.from({ length: t.numel }, (_, i) => Number(get(i)));
      }
    }
  };
  return {
    path: file,
    names: () => tensors.map((t) => t.name),
    metadata,
    dataOffset,
    has: (name) => byName.has(name),
    info,
    raw,
    toFloat32(name) {
      const f = floats(name);
      return f instanceof Float32Array ? f : Float32Array.from(f);
    },
    toFloat64(name) {
      const f = floats(name);
      return f instanceof Float64Array ? f : Float64Array.from(f);
    },
    toInt32(name) {
      const { t, get } = ints(name);
      const out = new Int32Array(t.numel);
      for (let i = 0; i < t.numel; i++) {
        const v = Number(get(i));
        if (v < -2147483648 || v > 2147483647)
          throw new SafetensorsError(`${file}: tensor '${name}' element ${i} = ${v} does not fit in int32`);
        out[i] = v;
      }
      return out;
    },
    toBigInt64(name) {
      const { t, get } = ints(name);
      const out = new BigInt64Array(t.numel);
      for (let i = 0; i < t.numel; i++) out[i] = BigInt(get(i));
      return out;
    },
    close() {
      if (open) fs.closeSync(fd);
      open = false;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------------------------

export type WritableDType = 'F32' | 'F64' | 'F16' | 'BF16' | 'I64' | 'I32';
export type TensorData = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint16Array;

export interface TensorToWrite {
  name: string;
  /** Stored dtype. F32 data converts to BF16/F16 (round to nearest even); Uint16Array data is taken as raw bits. */
  dtype: WritableDType;
  shape: readonly number[];
  data: TensorData;
}

const ACCEPTS: Record<WritableDType, string> = {
  F32: 'Float32Array or Float64Array', F64: 'Float64Array or Float32Array',
  BF16: 'Float32Array or Uint16Array (raw bits)', F16: 'Float32Array or Uint16Array (raw bits)',
  I64: 'BigInt64Array or Int32Array', I32: 'Int32Array',
};

/** The bytes of `data[start, end)` stored as `dtype`. */
function encodeSlice(t: TensorToWrite, start: number, end: number): Uint8Array {
  const d = t.data;
  const bad = (): never => {
    throw new SafetensorsError(`tensor '${t.name}': dtype ${t.dtype} needs data as ${ACCEPTS[t.dtype]}, got ${d.constructor.name}`);
  };
  const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  switch (t.dtype) {
    case 'F32':
      if (d instanceof Float32Array) return bytes(d.subarray(start, end));
      if (d instanceof Float64Array) return bytes(Float32Array.from(d.subarray(start, end)));
      return bad();
    case 'F64':
      if (d instanceof Float64Array) return bytes(d.subarray(start, end));
      if (d instanceof Float32Array) return bytes(Float64Array.from(d.subarray(start, end)));
      return bad();
    case 'BF16':
    case 'F16':
      if (d instanceof Uint16Array) return bytes(d.subarray(start, end));
      if (d instanceof Float32Array) return bytes(t.dtype === 'BF16' ? f32ToBf16(d.subarray(start, end)) : f32ToF16(d.subarray(start, end)));
      return bad();
    case 'I64':
      if (d instanceof BigInt64Array) return bytes(d.subarray(start, end));
      if (d instanceof Int32Array) return bytes(BigInt64Array.from(d.subarray(start, end), (x) => BigInt(x)));
      return bad();
    case 'I32':
      if (d instanceof Int32Array) return bytes(d.subarray(start, end));
      return bad();
  }
}

/** Builds the padded header for tensors in the given order; returns it and the data size. */
export function buildSafetensorsHeader(
  tensors: readonly TensorToWrite[], metadata?: Readonly<Record<string, string>>,
): { header: Uint8Array; dataBytes: number } {
  const obj: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) obj['__metadata__'] = { ...metadata };
  let offset = 0;
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
    obj[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + n] };
    offset += n;
  }
  const json = new TextEncoder().encode(JSON.stringify(obj));
  // Pad with spaces so the data section starts 8-byte aligned, as the format specifies.
  const padded = Math.ceil(json.length / 8) * 8;
  const header = new Uint8Array(8 + padded).fill(0x20, 8);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(json, 8);
  return { header, dataBytes: offset };
}

function checkTensors(tensors: readonly TensorToWrite[], file: string): void {
  const seen = new Set<string>();
  for (const t of tensors) {
    const where = `${file}: tensor '${t.name}'`;
    if (!t.name || t.name === '__metadata__') throw new SafetensorsError(`${file}: invalid tensor name ${JSON.stringify(t.name)}`);
    if (seen.has(t.name)) throw new SafetensorsError(`${where} is given twice`);
    seen.add(t.name);
    if (!Object.hasOwn(ACCEPTS, t.dtype)) throw new SafetensorsError(`${where}: cannot write dtype '${t.dtype}'; writable: ${Object.keys(ACCEPTS).join(', ')}`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw new SafetensorsError(`${where}: shape [${t.shape.join(', ')}] must hold non-negative integers`);
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== numel)
      throw new SafetensorsError(`${where}: shape [${t.shape.join(', ')}] has ${numel} elements but the data has ${t.data.length}`);
  }
}

/**
 * Writes tensors (and optional string metadata) to `file` atomically: a temporary file beside it, fsync, rename.
 * Tensors are laid out widest dtype first (stable), so every tensor's data is aligned to its element size.
 */
export function writeSafetensors(
  file: string, tensors: readonly TensorToWrite[], metadata?: Readonly<Record<string, string>>,
): void {
  checkTensors(tensors, file);
  const ordered = [...tensors].sort((a, b) => DTYPE_BYTES[b.dtype] - DTYPE_BYTES[a.dtype]);
  const { header } = buildSafetensorsHeader(ordered, metadata);
  const out = new AtomicFile(file);
  try {
    out.write(header);
    for (const t of ordered) {
      // Convert in slices so a large bf16 tensor never needs a second full-size copy.
      const step = 1 << 22;
      for (let i = 0; i < t.data.length; i += step) out.write(encodeSlice(t, i, Math.min(t.data.length, i + step)));
    }
  } catch (e) {
    out.abort();
    throw e;
  }
  out.commit();
}

/** Bytes a tensor takes when stored as `dtype`. */
export function storedBytes(shape: readonly number[], dtype: SafetensorsDType): number {
  return shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
}
