import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { loadTokenizer, splitAtPretokenBoundaries, QWEN3_EOT_ID } from '../../src/data/tokenizer.js';
import { spawnSync } from 'node:child_process';
import { BIN, rng, runCli, tmpDir, variedTexts } from './helpers.js';

const tok = loadTokenizer();

/** A plain reference byte-level BPE built from tokenizer.json's vocab and merges (no added tokens). */
function referenceBpe(): (text: string) => number[] {
  const j = JSON.parse(tok.jsonText()) as { model: { vocab: Record<string, number>; merges: (string | [string, string])[] } };
  const rank = new Map<string, number>();
  j.model.merges.forEach((m, i) => rank.set(Array.isArray(m) ? `${m[0]} ${m[1]}` : m, i));
  const byteChar: string[] = [];
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  let n = 0;
  for (let b = 0; b < 256; b++) byteChar[b] = bs.includes(b) ? String.fromCodePoint(b) : String.fromCodePoint(256 + n++);
  // The Qwen2 split pattern, written for JS: (?i:...) spelled out, and \s as Rust's Unicode White_Space
  // (JS's \s also matches U+FEFF).
  const split = /'(?:[sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\p{White_Space}\p{L}\p{N}]+[\r\n]*|\p{White_Space}*[\r\n]+|\p{White_Space}+(?!\P{White_Space})|\p{White_Space}+/gu;
  return (text: string) => {
    const ids: number[] = [];
    for (const word of text.normalize('NFC').match(split) ?? []) {
      let parts = [...Buffer.from(word, 'utf8')].map((b) => byteChar[b]!);
      for (;;) {
        let best = -1;
        let bestRank = Infinity;
        for (let i = 0; i + 1 < parts.length; i++) {
          const r = rank.get(`${parts[i]} ${parts[i + 1]}`);
          if (r !== undefined && r < bestRank) {
            bestRank = r;
            best = i;
          }
        }
        if (best < 0) break;
        parts = [...parts.slice(0, best), parts[best]! + parts[best + 1]!, ...parts.slice(best + 2)];
      }
      for (const p of parts) ids.push(j.model.vocab[p]!);
    }
    return ids;
  };
}

test('the Qwen3 tokenizer has the documented sizes and separator', () => {
  assert.equal(tok.full.getVocabSize(false), 151643);
  assert.equal(tok.addedTokens.length, 26);
  assert.equal(tok.vocabSize, 151669);
  assert.equal(tok.full.getVocabSize(true), tok.vocabSize);
  assert.equal(tok.eotId, QWEN3_EOT_ID);
  assert.equal(tok.addedTokens[0]!.content, '<|endoftext|>');
});

test('tokenize --jsonl matches the library encode token for token on varied text', async () => {
  const texts = [...variedTexts(7, 150), '', ' ', 'a<|endoftext|>b', '<|im_start|>user\nhi<|im_end|>', 'x'.repeat(5000)];
  const input = texts.map((t) => JSON.stringify({ text: t, meta: 1 })).join('\n') + '\n';
  const r = runCli(['tokenize', '--jsonl'], input);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines.length, texts.length);
  for (let i = 0; i < texts.length; i++) {
    const want = (await tok.full.encode(texts[i]!)).getIds();
    assert.deepEqual(JSON.parse(lines[i]!), want, `text ${i}: ${JSON.stringify(texts[i])}`);
  }
  // Added tokens are recognised and no BOS is added.
  assert.deepEqual(JSON.parse(lines[texts.length - 3]!), [64, 151643, 65]);
});

test('tokenize reports a bad line by number', () => {
  const r = runCli(['tokenize', '--jsonl'], '{"text":"ok"}\nnot json\n');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /line 2 is not JSON/);
  const r2 = runCli(['tokenize', '--jsonl'], '{"txt":"ok"}\n');
  assert.match(r2.stderr, /line 1 has no string field 'text'/);
});

test('tokenize refuses invalid UTF-8, naming the line, as prepare does (never a silent U+FFFD)', () => {
  const input = Buffer.concat([Buffer.from('{"text":"ok"}\r\n{"text":"a'), Buffer.from([0xff]), Buffer.from('"}\n')]);
  const r = spawnSync(process.execPath, [BIN, 'tokenize', '--jsonl'], { input, encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /stdin line 2 is not valid UTF-8; .*prepare skips such documents as invalid_utf8/);
  assert.equal(r.stdout.trim().split('\n').length, 1, 'the good line before it is still tokenized');
});

test('plain encode (prepare) treats special-token strings as text, as the byte-level BPE of the literal string', async () => {
  const ref = referenceBpe();
  const specials = tok.addedTokens.map((t) => t.content);
  for (const s of [...specials, `see ${specials[0]} here`, `${specials[1]}${specials[2]}`]) {
    const got = await tok.encode(s, { addedTokens: false });
    assert.deepEqual(got, ref(s), s);
    assert.ok(got.every((id) => id < 151643), `${s}: an added-token id leaked`);
    assert.equal(tok.decode(got), s);
  }
  // Without special strings, the plain and the full tokenizer agree, and both agree with the reference.
  for (const t of variedTexts(11, 60).map((x) => x.replace(/<[^>]*>/g, ''))) {
    const plain = await tok.encode(t, { addedTokens: false });
    assert.deepEqual(plain, await tok.encode(t), JSON.stringify(t));
    assert.deepEqual(plain, ref(t), JSON.stringify(t));
  }
});

test('decode inverts encode (on NFC text) and the incremental decoder never splits a character', async () => {
  const r = rng(3);
  for (const t of variedTexts(5, 80)) {
    const ids = await tok.encode(t);
    assert.equal(tok.decode(ids), t.normalize('NFC'));
    const inc = tok.incrementalDecoder();
    let out = '';
    let i = 0;
    while (i < ids.length) {
      const n = 1 + Math.floor(r() * 3);
      const piece = inc.push(ids.slice(i, i + n));
      assert.ok(!piece.includes('\ufffd'), `partial character emitted for ${JSON.stringify(t)}`);
      out += piece;
      i += n;
    }
    out += inc.flush();
    assert.equal(out, t.normalize('NFC'));
  }
  // A token that is the first byte of a 4-byte emoji alone: nothing is emitted until it completes.
  const emoji = await tok.encode('🙂');
  const inc = tok.incrementalDecoder();
  if (emoji.length > 1) assert.equal(inc.push(emoji[0]!), '');
  assert.throws(() => tok.decode([999999]), /outside this tokenizer's vocabulary/);
});

test('pieces cut at pre-token boundaries encode exactly like the whole text', async () => {
  const r = rng(9);
  const texts = variedTexts(13, 40).map((t) => t.repeat(1 + Math.floor(r() * 20)));
  texts.push('word '.repeat(3000), 'Ab\nCd\n'.repeat(2000), '中文\n'.repeat(1500) + 'x', 'nospaces'.repeat(500));
  for (const t of texts) {
    const maxChars = 5 + Math.floor(r() * 200);
    const pieces = splitAtPretokenBoundaries(t, maxChars);
    assert.equal(pieces.join(''), t);
    const whole = await tok.encode(t, { addedTokens: false });
    const parts = (await tok.encodeBatch(pieces, { addedTokens: false })).flat();
    assert.deepEqual(parts, whole, `maxChars ${maxChars}: ${JSON.stringify(t.slice(0, 60))}`);
  }
  assert.ok(splitAtPretokenBoundaries('word '.repeat(3000), 100).length > 100);
});

test('tokenizer save writes a transformers-loadable directory that lmforge reloads identically', async () => {
  const dir = tmpDir('toksave');
  const r = runCli(['tokenizer', 'save', dir]);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(fs.readFileSync(path.join(dir, 'tokenizer.json')).equals(fs.readFileSync(tok.path)));
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(cfg.tokenizer_class, 'Qwen2Tokenizer');
  assert.equal(cfg.eos_token, '<|endoftext|>');
  assert.equal(cfg.pad_token, '<|endoftext|>');
  assert.equal(cfg.bos_token, null);
  assert.equal(cfg.model_max_length, 131072);
  const atd = cfg.added_tokens_decoder as Record<string, { content: string; special: boolean }>;
  assert.equal(Object.keys(atd).length, 26);
  assert.equal(atd['151645']!.content, '<|im_end|>');
  const again = loadTokenizer(dir);
  assert.equal(again.sha256, tok.sha256);
  assert.deepEqual(await again.encode('hello <|im_end|>'), await tok.encode('hello <|im_end|>'));
  assert.throws(() => loadTokenizer(path.join(dir, 'nope')), /not found/);
  fs.rmSync(dir, { recursive: true, force: true });
});
