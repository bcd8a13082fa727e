import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { test } from 'node:test';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { isValDoc, readManifest } from '../../src/data/manifest.js';
import { prepare, type PrepareOptions } from '../../src/data/prepare.js';
import { loadTokenizer } from '../../src/data/tokenizer.js';
import { BIN, FIXTURES, dirBytes, readSplit, rng, runCli, splitDocs, tmpDir, variedTexts } from './helpers.js';

const tok = loadTokenizer();
const EOT = tok.eotId;
const quiet = { progress: false, log: () => undefined } satisfies Partial<PrepareOptions>;

/** Checks that the shards hold exactly the given documents (in order, split by the val rule), as plain text. */
async function assertHolds(dir: string, docs: string[], valFraction: number): Promise<void> {
  const want = { train: [] as number[][], val: [] as number[][] };
  const enc = await tok.encodeBatch(docs, { addedTokens: false });
  enc.forEach((ids, i) => want[isValDoc(i, valFraction) ? 'val' : 'train'].push(ids));
  for (const split of ['train', 'val'] as const) {
    const got = splitDocs(readSplit(dir, split), EOT);
    assert.equal(got.length, want[split].length, `${split}: document count`);
    got.forEach((g, i) => assert.deepEqual(g, want[split][i], `${split} document ${i}`));
  }
  const m = readManifest(dir);
  assert.equal(m.docs.accepted, docs.length);
  assert.equal(m.splits.train.docs + m.splits.val.docs, docs.length);
}

const fixtureDocs = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'docs.json'), 'utf8')) as string[];

test('JSONL, .jsonl.gz, .jsonl.zst and Parquet (snappy, zstd) give the same tokens as the library encode', async () => {
  const dir = tmpDir('formats');
  const docs = fixtureDocs;
  const jsonl = docs.map((t) => JSON.stringify({ text: t, meta: { src: 'x' } })).join('\n') + '\n';
  fs.writeFileSync(path.join(dir, 'a.jsonl'), jsonl);
  fs.writeFileSync(path.join(dir, 'a.jsonl.gz'), zlib.gzipSync(jsonl));
  const snappy = parquetWriteBuffer({ columnData: [{ name: 'text', data: docs, type: 'STRING' }], rowGroupSize: 64 });
  fs.writeFileSync(path.join(dir, 'a.parquet'), new Uint8Array(snappy));
  const inputs: Record<string, string> = {
    jsonl: path.join(dir, 'a.jsonl'),
    gz: path.join(dir, 'a.jsonl.gz'),
    zst: path.join(FIXTURES, 'docs.jsonl.zst'),
    parquetSnappy: path.join(dir, 'a.parquet'),
    parquetZstd: path.join(FIXTURES, 'docs-zstd.parquet'),
  };
  for (const [name, file] of Object.entries(inputs)) {
    const out = path.join(dir, `out-${name}`);
    const m = await prepare({ ...quiet, inputs: [file], out, valFraction: 0.05, workers: 2, shardTokens: 3000 });
    assert.equal(m.docs.skipped, 0, name);
    assert.equal(m.sources[0]!.bytes, fs.statSync(file).size, name);
    await assertHolds(out, docs, 0.05);
    assert.ok(m.splits.train.shards.length > 1, 'several shards');
    assert.ok(m.splits.train.shards.slice(0, -1).every((s) => s.tokens === 3000));
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

test('plain text: one document per file, or per blank-line-separated block', async () => {
  const dir = tmpDir('text');
  fs.writeFileSync(path.join(dir, 'b.txt'), 'Second file.\n');
  fs.writeFileSync(path.join(dir, 'a.txt'), 'Para one\nline two\n\n\n  \nPara two <|endoftext|> literal\r\n\r\nPara three');
  const files = await prepare({ ...quiet, inputs: [dir], out: path.join(dir, 'o1'), valFraction: 0, workers: 1 });
  assert.deepEqual(files.sources.map((s) => path.basename(s.path)), ['a.txt', 'b.txt']);
  await assertHolds(path.join(dir, 'o1'), [fs.readFileSync(path.join(dir, 'a.txt'), 'utf8'), 'Second file.\n'], 0);
  await prepare({ ...quiet, inputs: [path.join(dir, 'a.txt'), path.join(dir, 'b.txt')], out: path.join(dir, 'o2'), valFraction: 0, textMode: 'blank-lines' });
  await assertHolds(path.join(dir, 'o2'), ['Para one\nline two', 'Para two <|endoftext|> literal', 'Para three', 'Second file.'], 0);
  // The literal separator string in the text is not the separator id.
  const ids = readSplit(path.join(dir, 'o2'), 'train');
  assert.equal(ids.filter((x) => x === EOT).length, 4);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('bad input is skipped and counted by reason, and the good documents are intact', async () => {
  const dir = tmpDir('bad');
  const good = ['good one', 'good two', 'ünïcode three'];
  const lines = [
    JSON.stringify({ text: good[0] }),
    '{"text": "broken',
    JSON.stringify({ body: 'no text field' }),
    JSON.stringify({ text: 42 }),
    JSON.stringify({ text: '' }),
    JSON.stringify({ text: '  \n\t ' }),
    JSON.stringify({ text: 'x'.repeat(5000) }),
    JSON.stringify({ text: good[1] }),
  ];
  const invalid = Buffer.concat([Buffer.from('{"text": "bad \xff'), Buffer.from([0xff, 0xfe]), Buffer.from(' utf8"}\n')]);
  fs.writeFileSync(path.join(dir, 'a.jsonl'), Buffer.concat([Buffer.from(lines.join('\n') + '\n'), invalid, Buffer.from(JSON.stringify({ text: good[2] }) + '\n')]));
  // Truncated compressed files: the documents before the break are kept, the partial one is not.
  const gzDocs = Array.from({ length: 400 }, (_, i) => `gz doc ${i} ` + 'filler '.repeat(i % 17));
  const gz = zlib.gzipSync(gzDocs.map((t) => JSON.stringify({ text: t })).join('\n') + '\n');
  fs.writeFileSync(path.join(dir, 'cut.jsonl.gz'), gz.subarray(0, Math.floor(gz.length * 0.6)));
  const zst = fs.readFileSync(path.join(FIXTURES, 'docs.jsonl.zst'));
  fs.writeFileSync(path.join(dir, 'cut.jsonl.zst'), zst.subarray(0, Math.floor(zst.length * 0.5)));
  fs.writeFileSync(path.join(dir, 'bin.txt'), Buffer.from([0x66, 0x6f, 0xc3, 0x28]));
  fs.writeFileSync(path.join(dir, 'empty.txt'), '');
  fs.symlinkSync('loop', path.join(dir, 'loop'));
  fs.symlinkSync('loop', path.join(dir, 'loop2'));
  fs.renameSync(path.join(dir, 'loop2'), path.join(dir, 'loop')); // a symlink pointing at itself: unreadable
  const inputs = ['a.jsonl', 'cut.jsonl.gz', 'cut.jsonl.zst', 'bin.txt', 'empty.txt', 'loop'].map((n) => path.join(dir, n));
  const out = path.join(dir, 'out');
  const m = await prepare({ ...quiet, inputs, out, valFraction: 0, maxDocBytes: 1000, workers: 2 });
  assert.deepEqual(m.skipped, { not_json: 1, missing_field: 2, empty: 3, too_long: 1, invalid_utf8: 2, truncated: 2, unreadable: 1 });
  const src = Object.fromEntries(m.sources.map((s) => [path.basename(s.path), s]));
  assert.deepEqual(src['a.jsonl']!.skipped, { not_json: 1, missing_field: 2, empty: 2, too_long: 1, invalid_utf8: 1 });
  assert.equal(src['loop']!.bytes, null);
  // Every kept document is whole: the gz and zst documents are a prefix of their inputs.
  const got = splitDocs(readSplit(out, 'train'), EOT).map((ids) => tok.decode(ids));
  assert.deepEqual(got.slice(0, 3), good);
  const gzKept = src['cut.jsonl.gz']!.accepted;
  const zstKept = src['cut.jsonl.zst']!.accepted;
  assert.ok(gzKept > 50 && gzKept < 400, `gz kept ${gzKept}`);
  assert.ok(zstKept > 0 && zstKept < fixtureDocs.length, `zst kept ${zstKept}`);
  assert.deepEqual(got.slice(3, 3 + gzKept), gzDocs.slice(0, gzKept));
  assert.deepEqual(got.slice(3 + gzKept), fixtureDocs.slice(0, zstKept).map((t) => t.normalize('NFC')));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('--on-error fail stops at the first bad document, naming file and line', () => {
  const dir = tmpDir('fail');
  const f = path.join(dir, 'x.jsonl');
  fs.writeFileSync(f, '{"text":"fine"}\n{"text":"fine"}\n{oops}\n');
  const r = runCli(['prepare', '--input', f, '--out', path.join(dir, 'o'), '--on-error', 'fail', '--quiet']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3: line is not JSON`));
  assert.ok(!fs.existsSync(path.join(dir, 'o', 'manifest.json')));
  const r2 = runCli(['prepare', '--input', path.join(dir, 'missing.jsonl'), '--out', path.join(dir, 'o2')]);
  assert.equal(r2.status, 1);
  assert.match(r2.stderr, /does not exist/);
  fs.rmSync(dir, { recursive: true, force: true });
});

function bigJsonl(dir: string, n: number): string {
  const f = path.join(dir, 'big.jsonl');
  const texts = variedTexts(21, n);
  fs.writeFileSync(f, texts.map((t) => JSON.stringify({ text: t })).join('\n') + '\n');
  return f;
}

test('the output bytes do not depend on the worker count', async () => {
  const dir = tmpDir('det');
  const f = bigJsonl(dir, 3000);
  await prepare({ ...quiet, inputs: [f], out: path.join(dir, 'w1'), workers: 1, shardTokens: 7000, valFraction: 0.01 });
  await prepare({ ...quiet, inputs: [f], out: path.join(dir, 'w3'), workers: 3, shardTokens: 7000, valFraction: 0.01 });
  const a = dirBytes(path.join(dir, 'w1'));
  const b = dirBytes(path.join(dir, 'w3'));
  assert.deepEqual([...a.keys()], [...b.keys()]);
  for (const [k, v] of a) assert.ok(v.equals(b.get(k)!), `${k} differs`);
  await assertHolds(path.join(dir, 'w1'), variedTexts(21, 3000).filter((t) => t.trim() !== ''), 0.01);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a prepare killed midway and rerun gives shards byte-identical to an uninterrupted run', async () => {
  const dir = tmpDir('resume');
  const f = bigJsonl(dir, 8000);
  const args = (out: string): string[] => ['prepare', '--input', f, '--out', out, '--shard-tokens', '2500', '--workers', '2', '--val-fraction', '0.01', '--quiet'];
  const full = path.join(dir, 'full');
  assert.equal(runCli(args(full)).status, 0);
  const cut = path.join(dir, 'cut');
  // Kill as soon as a few shards are complete (SIGKILL: no cleanup runs).
  const child = spawn(process.execPath, [BIN, ...args(cut)], { stdio: 'ignore' });
  const killedEarly = await new Promise<boolean>((resolve) => {
    const t = setInterval(() => {
      const n = fs.existsSync(cut) ? fs.readdirSync(cut).filter((x) => /^train-\d+\.bin$/.test(x)).length : 0;
      if (n >= 3) {
        child.kill('SIGKILL');
        clearInterval(t);
      }
    }, 5);
    child.on('exit', (_code, signal) => {
      clearInterval(t);
      resolve(signal === 'SIGKILL');
    });
  });
  assert.ok(killedEarly, 'the run finished before it could be killed; make the input larger');
  assert.ok(!fs.existsSync(path.join(cut, 'manifest.json')));
  const before = fs.readdirSync(cut).filter((x) => /^train-\d+\.bin$/.test(x)).length;
  assert.ok(before < readManifest(full).splits.train.shards.length, 'killed before the end');
  const r = runCli([...args(cut).slice(0, -1)]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /resuming: \d+ complete shard/);
  const a = dirBytes(full);
  const b = dirBytes(cut);
  assert.deepEqual([...b.keys()], [...a.keys()]);
  for (const [k, v] of a) assert.ok(v.equals(b.get(k)!), `${k} differs after resume`);
  // A corrupted shard is detected by checksum on the next run and rebuilt.
  const victim = path.join(cut, 'train-00001.bin');
  const bytes = fs.readFileSync(victim);
  bytes[100] ^= 0xff;
  fs.writeFileSync(victim, bytes);
  const r2 = runCli(args(cut));
  assert.equal(r2.status, 0, r2.stderr);
  for (const [k, v] of a) assert.ok(v.equals(fs.readFileSync(path.join(cut, k))), `${k} differs after repair`);
  // Different settings into the same directory are refused.
  const r3 = runCli([...args(cut), '--field', 'body']);
  assert.equal(r3.status, 1);
  assert.match(r3.stderr, /other inputs or settings/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('--out: a file is never replaced; a non-empty directory without a dataset needs --force, and keeps its files', async () => {
  const dir = tmpDir('out-rules');
  const input = path.join(dir, 'in.txt');
  fs.writeFileSync(input, 'a few words of text\n');
  const file = path.join(dir, 'a-file');
  fs.writeFileSync(file, 'precious');
  await assert.rejects(prepare({ ...quiet, inputs: [input], out: file, workers: 1 }), /a-file exists and is not a directory/);
  assert.equal(fs.readFileSync(file, 'utf8'), 'precious');
  const foreign = path.join(dir, 'foreign');
  fs.mkdirSync(foreign);
  fs.writeFileSync(path.join(foreign, 'manifest.json'), '{"mine": true}');
  fs.writeFileSync(path.join(foreign, 'notes.txt'), 'mine');
  await assert.rejects(prepare({ ...quiet, inputs: [input], out: foreign, workers: 1 }), /foreign is not empty \(manifest\.json, notes\.txt\) and holds no dataset being prepared; .*--force/);
  assert.equal(fs.readFileSync(path.join(foreign, 'manifest.json'), 'utf8'), '{"mine": true}');
  await prepare({ ...quiet, inputs: [input], out: foreign, workers: 1, force: true, valFraction: 0 });
  assert.equal(fs.readFileSync(path.join(foreign, 'notes.txt'), 'utf8'), 'mine');
  assert.equal(readManifest(foreign).splits.train.docs, 1);
  // A rerun into its own dataset needs no --force.
  await prepare({ ...quiet, inputs: [input], out: foreign, workers: 1, valFraction: 0 });
});

test('a 100 MB single line is encoded in bounded pieces', { skip: process.env.LMFORGE_LONG_TESTS !== '1' && 'set LMFORGE_LONG_TESTS=1' }, async () => {
  const dir = tmpDir('long');
  const f = path.join(dir, 'long.jsonl');
  const r = rng(5);
  const words = ['alpha', 'beta', 'gamma', 'délta', '数据', '🙂', 'x1'];
  const fd = fs.openSync(f, 'w');
  fs.writeSync(fd, '{"text": "');
  let written = 0;
  while (written < 100e6) {
    const chunk = Array.from({ length: 10000 }, () => words[Math.floor(r() * words.length)]).join(' ') + ' ';
    fs.writeSync(fd, chunk);
    written += Buffer.byteLength(chunk);
  }
  fs.writeSync(fd, '"}\n{"text": "after"}\n');
  fs.closeSync(fd);
  const m = await prepare({ ...quiet, inputs: [f], out: path.join(dir, 'o'), valFraction: 0, workers: 2 });
  assert.equal(m.docs.accepted, 2);
  const docs = splitDocs(readSplit(path.join(dir, 'o'), 'train'), EOT);
  assert.equal(tok.decode(docs[1]!), 'after');
  assert.ok(docs[0]!.length > 10e6);
  // Over the limit: skipped as too_long, not buffered.
  const m2 = await prepare({ ...quiet, inputs: [f], out: path.join(dir, 'o2'), valFraction: 0, maxDocBytes: 50 << 20 });
  assert.deepEqual(m2.skipped, { too_long: 1 });
  fs.rmSync(dir, { recursive: true, force: true });
});
