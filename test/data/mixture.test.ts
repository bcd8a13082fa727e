import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { openLoader } from '../../src/data/loader.js';
import { DataExhaustedError, openMixture, type MixtureOptions, type MixtureState } from '../../src/data/mixture.js';
import { documentSegments } from '../../src/data/documents.js';
import { prepare } from '../../src/data/prepare.js';
import { tmpDir, variedTexts } from './helpers.js';

let root = '';
let big = '';
let small = '';

before(async () => {
  root = tmpDir('mixture');
  const make = async (name: string, seed: number, docs: number): Promise<string> => {
    const f = path.join(root, `${name}.jsonl`);
    fs.writeFileSync(f, variedTexts(seed, docs).map((t) => JSON.stringify({ text: t })).join('\n') + '\n');
    const out = path.join(root, name);
    await prepare({ inputs: [f], out, shardTokens: 997, valFraction: 0.05, workers: 1, progress: false, log: () => undefined });
    return out;
  };
  big = await make('big', 31, 800);
  small = await make('small', 57, 60);
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

const opts = (o: Partial<MixtureOptions> = {}): MixtureOptions => ({
  sources: [{ name: 'big', dir: big, weight: 0.7 }, { name: 'small', dir: small, weight: 0.3 }],
  split: 'train', seq: 16, batch: 4, seed: 11, ...o,
});

test('a mixture of one source reads exactly what the plain loader reads, on every rank', async () => {
  for (const worldSize of [1, 3]) {
    for (let rank = 0; rank < worldSize; rank++) {
      const plain = await openLoader({ dir: big, split: 'train', seq: 16, batch: 4, seed: 11, rank, worldSize });
      const mix = await openMixture(opts({ sources: [{ name: 'big', dir: big, weight: 1 }], rank, worldSize }));
      // Past an epoch, so the reshuffle of epoch 2 is covered too.
      const steps = plain.stepsPerEpoch + 5;
      for (let i = 0; i < steps; i++) assert.deepEqual(mix.next().tokens, plain.next().tokens, `rank ${rank}/${worldSize} batch ${i}`);
      // And a plain loader's saved position resumes the mixture at the same batch.
      const again = await openMixture(opts({ sources: [{ name: 'big', dir: big, weight: 1 }], rank, worldSize }));
      again.restore(plain.state());
      assert.deepEqual(again.next().tokens, plain.next().tokens);
      plain.close();
      mix.close();
      again.close();
    }
  }
});

test('sources are chosen by weight, deterministically from the seed, and realised proportions are reported', async () => {
  const a = await openMixture(opts());
  const b = await openMixture(opts());
  const c = await openMixture(opts({ seed: 12 }));
  let differs = false;
  for (let i = 0; i < 500; i++) {
    const x = a.next();
    const y = b.next();
    assert.deepEqual(x.tokens, y.tokens);
    assert.deepEqual(x.sources, y.sources);
    if (JSON.stringify(c.next().sources) !== JSON.stringify(x.sources)) differs = true;
  }
  assert.ok(differs, 'another seed gives another choice of sources');
  const [pBig, pSmall] = a.proportions();
  // 2000 rows at 70/30: the standard deviation of the share is about 1%.
  assert.ok(Math.abs(pBig! - 0.7) < 0.04 && Math.abs(pSmall! - 0.3) < 0.04, `realised ${pBig} / ${pSmall}`);
  assert.equal(pBig! + pSmall!, 1);
  for (const m of [a, b, c]) m.close();
});

test('the ranks of a data-parallel run share the global stream of rows and its per-source counts', async () => {
  const one = await openMixture(opts({ batch: 6 }));
  const ranks = await Promise.all([0, 1, 2].map((rank) => openMixture(opts({ batch: 2, rank, worldSize: 3 }))));
  for (let i = 0; i < 40; i++) {
    const whole = one.next();
    const parts = ranks.map((r) => r.next());
    const joined = new Int32Array(whole.tokens.length);
    parts.forEach((p, r) => joined.set(p.tokens, r * p.tokens.length));
    assert.deepEqual(joined, whole.tokens, `batch ${i}`);
  }
  for (const r of ranks) assert.deepEqual(r.state().counts, one.state().counts);
  one.close();
  for (const r of ranks) r.close();
});

test('restore(state()) replays the same batches; another world size continues at the same global row', async () => {
  const a = await openMixture(opts());
  for (let i = 0; i < 37; i++) a.next();
  const saved: MixtureState = JSON.parse(JSON.stringify(a.state()));
  const expect = [a.next(), a.next(), a.next()].map((x) => x.tokens);
  const b = await openMixture(opts());
  assert.deepEqual(b.restore(saved), { sameShape: true });
  assert.deepEqual([b.next(), b.next(), b.next()].map((x) => x.tokens), expect);
  // Two ranks of micro-batch 2 together read the same 4 rows as one rank of 4.
  const r0 = await openMixture(opts({ batch: 2, rank: 0, worldSize: 2 }));
  const r1 = await openMixture(opts({ batch: 2, rank: 1, worldSize: 2 }));
  assert.deepEqual(r0.restore(saved), { sameShape: false });
  r1.restore(saved);
  const joined = new Int32Array(expect[0]!.length);
  joined.set(r0.next().tokens, 0);
  joined.set(r1.next().tokens, joined.length / 2);
  assert.deepEqual(joined, expect[0]);
  // A state for other data is refused with a message naming the difference.
  const other = await openMixture(opts({ sources: [{ name: 'big', dir: big, weight: 0.5 }, { name: 'small', dir: small, weight: 0.5 }] }));
  assert.throws(() => other.restore(saved), /sources big \(\d+ windows, weight 0.7\)/);
  assert.throws(() => b.restore({ ...saved, counts: [1, 2] }), /damaged/);
  for (const m of [a, b, r0, r1, other]) m.close();
});

test('a source smaller than its share is repeated with its epochs counted, or stops the run without consuming', async () => {
  const m = await openMixture(opts({ sources: [{ name: 'big', dir: big, weight: 0.3 }, { name: 'small', dir: small, weight: 0.7 }] }));
  const smallWindows = m.windows[1]!;
  const repeats: { source: string; epoch: number }[] = [];
  const rows = Math.ceil((smallWindows * 2.5) / 0.7);
  for (let i = 0; i < rows / 4; i++) repeats.push(...m.next().repeats);
  const smallRepeats = repeats.filter((r) => r.source === 'small');
  assert.deepEqual(smallRepeats.map((r) => r.epoch), [2, 3]);
  assert.ok(m.state().counts[1]! > 2 * smallWindows);
  m.close();

  const s = await openMixture(opts({ sources: [{ name: 'big', dir: big, weight: 0.3 }, { name: 'small', dir: small, weight: 0.7 }], onExhausted: 'stop' }));
  let err: unknown = null;
  let before = s.state();
  for (let i = 0; i < rows && !err; i++) {
    before = s.state();
    try {
      s.next();
    } catch (e) {
      err = e;
    }
  }
  assert.ok(err instanceof DataExhaustedError, String(err));
  assert.equal(err.source, 'small');
  assert.match(err.message, /on_exhausted is 'stop'/);
  assert.deepEqual(s.state(), before, 'the refused batch consumed nothing');
  // The refused batch would have read the last windows and then a repeat: up to its start, none is read twice.
  const readSmall = s.state().counts[1]!;
  assert.ok(readSmall <= smallWindows && readSmall > smallWindows - 4, `${readSmall} of ${smallWindows} windows`);
  s.close();
});

test('datasets prepared with different tokenizers cannot be mixed', async () => {
  const other = path.join(root, 'other');
  fs.cpSync(small, other, { recursive: true });
  const mf = path.join(other, 'manifest.json');
  const m = JSON.parse(fs.readFileSync(mf, 'utf8'));
  m.tokenizer.sha256 = '0'.repeat(64);
  fs.writeFileSync(mf, JSON.stringify(m));
  await assert.rejects(openMixture(opts({ sources: [{ name: 'big', dir: big, weight: 1 }, { name: 'other', dir: other, weight: 1 }] })), /different tokenizers/);
});

test('document segments: a new segment after every EOS and at every row start; positions restart', () => {
  const E = 9;
  const ids = Int32Array.from([1, 2, E, 3, 4, 5, E, E, /* row 2 */ 6, E, 7, 8, 9 - 1, 1, 2, E]);
  const d = documentSegments(ids, 2, 8, E);
  assert.deepEqual(Array.from(d.cuSeqlens), [0, 3, 7, 8, 10, 16]);
  assert.deepEqual(Array.from(d.positions), [0, 1, 2, 0, 1, 2, 3, 0, 0, 1, 0, 1, 2, 3, 4, 5]);
});
