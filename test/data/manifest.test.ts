/**
 * data/manifest.ts: manifest.json of a prepared dataset (docs/data.md) read back as written, and refused with the fix
 * named when it is missing, not JSON, another format or another version; manifest and progress JSON written whole
 * (every byte, then renamed) or not at all, without leaking descriptors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readManifest, writeJsonAtomic } from '../../src/data/manifest.js';
import { fullDisk, shortWrites, temporariesUnder, withFault } from '../fs-faults.js';
import { tmpDir } from './helpers.js';

const dir = tmpDir('manifest');
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

test('short writes give the whole JSON; a full disk keeps the old file and names the new one', () => {
  const file = path.join(dir, 'progress.json');
  const value = { key: 'k'.repeat(64), shards: Array.from({ length: 200 }, (_, i) => ({ file: `train-${i}.bin`, tokens: i })) };
  withFault(shortWrites, () => writeJsonAtomic(file, value));
  assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), value);
  assert.throws(
    () => withFault(() => fullDisk(100), () => writeJsonAtomic(file, { ...value, key: 'new' })),
    (e: Error) => e.message.startsWith(file) && /ENOSPC/.test(e.message),
  );
  assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), value);
  assert.deepEqual(temporariesUnder(dir), []);
});

const tmpd = tmpDir('manifest-read');
process.on('exit', () => fs.rmSync(tmpd, { recursive: true, force: true }));

/** A dataset directory whose manifest.json holds `text`. */
function dirWith(name: string, text: string | null): string {
  const dir = path.join(tmpd, name);
  fs.mkdirSync(dir);
  if (text !== null) fs.writeFileSync(path.join(dir, 'manifest.json'), text);
  return dir;
}

test('a manifest in the documented format and version is read back as written', () => {
  // The on-disk identity docs/data.md gives: format 'lmforge-token-shards', version 1.
  const m = {
    format: 'lmforge-token-shards', version: 1, splitRule: 'every-1/f-th-document',
    tokenizer: { sha256: 'ab12', file: 'tokenizer.json', vocabSize: 10, eotId: 9, addedTokensInText: false },
    docs: { read: 3, accepted: 2, skipped: 1 },
    splits: {
      train: { docs: 2, tokens: 5, textBytes: 20, shards: [{ file: 'train-00000.bin', tokens: 5, bytes: 52, sha256: 'cd34' }] },
      val: { docs: 0, tokens: 0, textBytes: 0, shards: [] },
    },
  };
  assert.deepEqual(readManifest(dirWith('good', JSON.stringify(m))), m);
});

test('a missing, unparsable, foreign or newer manifest is refused, naming the file and the fix', () => {
  const none = dirWith('none', null);
  assert.throws(() => readManifest(none), new RegExp(`^Error: ${none}: no manifest\\.json; this is not a prepared dataset \\(run 'lmforge prepare`));
  const bad = dirWith('bad', '{"format": ');
  assert.throws(() => readManifest(bad), new RegExp(`^Error: ${bad}/manifest\\.json: not valid JSON \\(.+\\); rerun 'lmforge prepare' to rewrite it$`));
  const other = dirWith('other', JSON.stringify({ format: 'something-else', version: 1 }));
  assert.throws(() => readManifest(other), new RegExp(`^Error: ${other}/manifest\\.json: not an lmforge dataset manifest \\(format 'something-else'\\)$`));
  const newer = dirWith('newer', JSON.stringify({ format: 'lmforge-token-shards', version: 2 }));
  assert.throws(() => readManifest(newer), new RegExp(`^Error: ${newer}/manifest\\.json: manifest version 2, this lmforge reads 1; re-prepare the data$`));
});

test('writeJsonAtomic leaves the JSON under its name, no temporary file, and no open descriptor', () => {
  const file = path.join(tmpd, 'out.json');
  const fds = (): number => fs.readdirSync('/proc/self/fd').length;
  const before = fds();
  for (let i = 0; i < 20; i++) writeJsonAtomic(file, { i, nested: [1, 2] });
  assert.equal(fds(), before, 'a file descriptor leaked');
  assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), { i: 19, nested: [1, 2] });
  assert.deepEqual(fs.readdirSync(tmpd).filter((f) => f.startsWith('out')), ['out.json']);
});
