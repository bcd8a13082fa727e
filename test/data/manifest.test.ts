/**
 * manifest.json of a prepared dataset (docs/data.md): read back as written, and refused with the fix named when
 * it is missing, not JSON, another format or another version; written atomically without leaking descriptors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readManifest, writeJsonAtomic } from '../../src/data/manifest.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lmforge-manifest-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

/** A dataset directory whose manifest.json holds `text`. */
function dirWith(name: string, text: string | null): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  if (text !== null) fs.writeFileSync(path.join(dir, 'manifest.json'), text);
  return dir;
}

test('a manifest in the documented format and version is read back as written', () => {
  // The on-disk identity docs/data.md gives: format 'lmforge-token-shards', version 1.
  const m = { format: 'lmforge-token-shards', version: 1, splitRule: 'every-1/f-th-document', docs: { read: 3, accepted: 2, skipped: 1 } };
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
  const file = path.join(tmp, 'out.json');
  const fds = (): number => fs.readdirSync('/proc/self/fd').length;
  const before = fds();
  for (let i = 0; i < 20; i++) writeJsonAtomic(file, { i, nested: [1, 2] });
  assert.equal(fds(), before, 'a file descriptor leaked');
  assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), { i: 19, nested: [1, 2] });
  assert.deepEqual(fs.readdirSync(tmp).filter((f) => f.startsWith('out')), ['out.json']);
});
