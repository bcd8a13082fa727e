import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { FeistelPermutation, datasetInfo, openLoader, type LoaderOptions } from '../../src/data/loader.js';
import { prepare } from '../../src/data/prepare.js';
import { readSplit, tmpDir, variedTexts } from './helpers.js';

let dir = '';
let stream: Uint32Array;
const base = (o: Partial<LoaderOptions>): LoaderOptions => ({ dir, split: 'train', seq: 16, batch: 4, seed: 7, ...o });

// The temporary root is kept apart from `dir`: cleaning up dirname(dir) after a failed before() removed all of /tmp.
let root = '';

before(async () => {
  root = tmpDir('loader');
  dir = root;
  const f = path.join(dir, 'in.jsonl');
  fs.writeFileSync(f, variedTexts(31, 800).map((t) => JSON.stringify({ text: t })).join('\n') + '\n');
  // Small shards so windows straddle shard boundaries.
  await prepare({ inputs: [f], out: path.join(dir, 'ds'), shardTokens: 997, valFraction: 0.05, workers: 2, progress: false, log: () => undefined });
  dir = path.join(dir, 'ds');
  stream = readSplit(dir, 'train');
});
after(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

/** Window w of the stream as the loader must return it. */
function windowOf(w: number, seq: number): number[] {
  return Array.from(stream.subarray(w * seq, w * seq + seq + 1));
}

/** Recovers window indices from a batch by matching against the stream. */
function rows(tokens: Int32Array, seq: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < tokens.length; i += seq + 1) out.push(Array.from(tokens.subarray(i, i + seq + 1)));
  return out;
}

test('the Feistel shuffle is a bijection for many sizes and depends on seed and epoch', () => {
  for (const n of [1, 2, 3, 5, 17, 64, 100, 1000, 4097]) {
    const p = new FeistelPermutation(n, 42, 0);
    const seen = new Set<number>();
    for (let i = 0; i < n; i++) seen.add(p.apply(i));
    assert.equal(seen.size, n);
    assert.ok([...seen].every((v) => v >= 0 && v < n));
  }
  const a = Array.from({ length: 50 }, (_, i) => new FeistelPermutation(1000, 1, 0).apply(i));
  const b = Array.from({ length: 50 }, (_, i) => new FeistelPermutation(1000, 2, 0).apply(i));
  const c = Array.from({ length: 50 }, (_, i) => new FeistelPermutation(1000, 1, 1).apply(i));
  assert.notDeepEqual(a, b);
  assert.notDeepEqual(a, c);
});

test('sequential windows are consecutive seq+1 slices of the token stream, across shard boundaries', async () => {
  const L = await openLoader(base({ order: 'sequential' }));
  assert.equal(L.windows, Math.floor((stream.length - 1) / 16));
  for (let s = 0; s < 5; s++) {
    const b = L.next();
    assert.equal(b.tokens.length, 4 * 17);
    rows(b.tokens, 16).forEach((r, j) => assert.deepEqual(r, windowOf(s * 4 + j, 16)));
  }
  L.close();
});

/** Checks each row against the stream and returns the batch's window indices. */
function checked(b: { tokens: Int32Array; windows: number[] }, seq: number): number[] {
  rows(b.tokens, seq).forEach((r, j) => assert.deepEqual(r, windowOf(b.windows[j]!, seq)));
  return b.windows;
}

test('random order visits every window once per epoch, reproducibly from the seed', async () => {
  const L = await openLoader(base({ batch: 3 }));
  const n = L.windows;
  const order: number[] = [];
  while (order.length < 2 * n) order.push(...checked(L.next(), 16));
  const e0 = order.slice(0, n);
  const e1 = order.slice(n, 2 * n);
  assert.equal(new Set(e0).size, n);
  assert.equal(new Set(e1).size, n);
  assert.notDeepEqual(e0, e1);
  assert.notDeepEqual(e0, [...e0].sort((x, y) => x - y));
  const same = await openLoader(base({ batch: 3 }));
  const other = await openLoader(base({ batch: 3, seed: 8 }));
  assert.deepEqual(same.next().windows, e0.slice(0, 3));
  assert.notDeepEqual(other.next().windows, e0.slice(0, 3));
  [L, same, other].forEach((x) => x.close());
});

test('ranks get disjoint windows that together cover the epoch', async () => {
  const world = 3;
  const loaders = await Promise.all([0, 1, 2].map((rank) => openLoader(base({ rank, worldSize: world, batch: 2 }))));
  const n = loaders[0]!.windows;
  const owner = new Map<number, number>();
  const steps = Math.ceil(n / (world * 2));
  for (let s = 0; s < steps; s++)
    loaders.forEach((L, rank) => {
      for (const w of checked(L.next(), 16)) {
        if (owner.size < n || !owner.has(w)) assert.ok(!owner.has(w), `window ${w} given to ranks ${owner.get(w)} and ${rank}`);
        if (!owner.has(w)) owner.set(w, rank);
        if (owner.size === n) break;
      }
    });
  assert.equal(owner.size, n, 'all windows covered in one epoch');
  loaders.forEach((L) => L.close());
});

test('state() / restore() replays exactly the same batches', async () => {
  const L = await openLoader(base({ batch: 5 }));
  for (let i = 0; i < 7; i++) L.next();
  const saved = JSON.parse(JSON.stringify(L.state())) as ReturnType<typeof L.state>;
  const expected = Array.from({ length: 30 }, () => Array.from(L.next().tokens));
  const R = await openLoader(base({ batch: 5 }));
  R.restore(saved);
  for (const e of expected) assert.deepEqual(Array.from(R.next().tokens), e);
  const other = await openLoader(base({ batch: 6 }));
  assert.throws(() => other.restore(saved), /batch=5 but this loader has batch=6/);
  [L, R, other].forEach((x) => x.close());
});

test('val split, datasetInfo and clear errors', async () => {
  const info = datasetInfo(dir);
  assert.equal(info.tokens.train, stream.length);
  assert.ok(info.tokens.val > 0 && info.docs.val > 0);
  assert.ok(info.bytesPerToken.train > 1 && info.bytesPerToken.train < 10);
  const V = await openLoader(base({ split: 'val', order: 'sequential', verify: true }));
  assert.equal(V.next().tokens.length, 4 * 17);
  V.close();
  await assert.rejects(openLoader(base({ seq: 10_000_000 })), /fewer than one window/);
  await assert.rejects(openLoader(base({ rank: 2, worldSize: 2 })), /rank must be in/);
  await assert.rejects(openLoader({ ...base({}), dir: path.dirname(dir) }), /no manifest.json/);
});

/** A copy of the prepared dataset with `edit` applied to its manifest (and the chance to change files). */
function damaged(tag: string, edit: (m: Record<string, any>, copy: string) => void): string {
  const copy = path.join(path.dirname(dir), tag);
  fs.cpSync(dir, copy, { recursive: true });
  const file = path.join(copy, 'manifest.json');
  const m = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(m, copy);
  fs.writeFileSync(file, JSON.stringify(m));
  return copy;
}

/** One line, naming the problem, never a TypeError from deep inside. */
const oneLine = (re: RegExp) => (e: Error) => re.test(e.message) && !e.message.includes('\n') && !/Cannot read|undefined/.test(e.message);

test('damaged datasets: a missing val split, escaping shard paths, foreign ids and vocabularies are clear errors', async () => {
  const noVal = damaged('no-val', (m) => delete m.splits.val);
  assert.throws(() => datasetInfo(noVal), oneLine(/manifest\.json: there is no 'val' split/));
  await assert.rejects(openLoader({ ...base({}), dir: noVal }), oneLine(/no 'val' split/));

  const escape = damaged('escape', (m) => (m.splits.train.shards[0].file = '../../../etc/passwd'));
  await assert.rejects(openLoader({ ...base({}), dir: escape }), oneLine(/"\.\.\/\.\.\/\.\.\/etc\/passwd" is not a file name inside the dataset directory; refusing to open it/));

  const vocab = damaged('vocab', (m) => (m.tokenizer.vocabSize = 200_000));
  await assert.rejects(openLoader({ ...base({}), dir: vocab }), oneLine(/declares a vocabulary of 151669 but the manifest says 200000/));

  // An id at the shard's vocabulary size and one at 0xFFFFFFFF: reported as they are, never trained on.
  for (const [tag, id, shown] of [['id-vocab', 151669, '151669'], ['id-max', 0xffffffff, '4294967295']] as const) {
    const bad = damaged(tag, (m, copy) => {
      const f = path.join(copy, m.splits.train.shards[0].file);
      const b = fs.readFileSync(f);
      b.writeUInt32LE(id, 32 + 4 * 5); // token 5 of the first shard
      fs.writeFileSync(f, b);
    });
    const L = await openLoader({ ...base({ order: 'sequential', batch: 1 }), dir: bad });
    assert.throws(() => L.next(), oneLine(new RegExp(`train-00000\\.bin: token 5 is id ${shown}, at or above the vocabulary size 151669`)));
    L.close();
  }
});
