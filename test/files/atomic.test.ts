/** files/atomic.ts: every byte or an error naming the path, nothing under the final name unless whole, stale temporaries. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AtomicFile, checkOutputDir, publishDir, removeStaleTemps, tmpPath, writeFileAtomic } from '../../src/files/atomic.js';
import { deadPid, deniedOpen, fullDisk, shortWrites, withFault } from '../fs-faults.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lmforge-atomic-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

const bytes = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255);

test('short writes: every byte still lands, in order', () => {
  const f = path.join(tmp, 'short.bin');
  const data = bytes(100_003);
  withFault(shortWrites, () => writeFileAtomic(f, data));
  assert.deepEqual(new Uint8Array(fs.readFileSync(f)), data);
  const g = path.join(tmp, 'short-at.bin');
  withFault(shortWrites, () => {
    const out = new AtomicFile(g);
    out.write(bytes(10));
    out.writeAt(bytes(1000, 7), 10);
    out.writeAt(Uint8Array.of(9, 9), 0);
    out.commit();
  });
  const back = new Uint8Array(fs.readFileSync(g));
  assert.equal(back.length, 1010);
  assert.deepEqual(back.subarray(0, 2), Uint8Array.of(9, 9));
  assert.deepEqual(back.subarray(10), bytes(1000, 7));
});

test('a full disk: the write fails naming the file and the fix; the old file stays, no temporary is left', () => {
  const f = path.join(tmp, 'full.json');
  writeFileAtomic(f, 'old\n');
  assert.throws(
    () => withFault(() => fullDisk(1000), () => writeFileAtomic(f, 'x'.repeat(5000))),
    (e: Error) => e.message.includes(f) && /no space left/.test(e.message) && /ENOSPC/.test(e.message) && !e.message.includes('\n'),
  );
  assert.equal(fs.readFileSync(f, 'utf8'), 'old\n');
  assert.ok(!fs.existsSync(tmpPath(f)));
});

test('permission denied names the file and the fix', () => {
  const f = path.join(tmp, 'denied.json');
  assert.throws(
    () => withFault(() => deniedOpen((p) => p.startsWith(f)), () => writeFileAtomic(f, '{}')),
    (e: Error) => e.message.startsWith(f) && /permission denied.*(check the permissions|another path).*EACCES/.test(e.message),
  );
});

test('stale temporaries of dead processes are removed; those of live processes and other files are kept', () => {
  const d = path.join(tmp, 'stale');
  fs.mkdirSync(d);
  const dead = deadPid();
  fs.mkdirSync(path.join(d, `step-00000004.tmp-${dead}`));
  fs.writeFileSync(path.join(d, `step-00000004.tmp-${dead}`, 'model.safetensors'), 'partial');
  fs.writeFileSync(path.join(d, `latest.tmp-${dead}`), 'x');
  fs.writeFileSync(path.join(d, `mine.tmp-${process.pid}`), 'x');
  fs.writeFileSync(path.join(d, `parent.tmp-${process.ppid}`), 'x');
  fs.writeFileSync(path.join(d, 'keep.json'), 'x');
  const removed = removeStaleTemps(d).map((p) => path.basename(p)).sort();
  assert.deepEqual(removed, [`latest.tmp-${dead}`, `step-00000004.tmp-${dead}`]);
  assert.deepEqual(fs.readdirSync(d).sort(), ['keep.json', `mine.tmp-${process.pid}`, `parent.tmp-${process.ppid}`].sort());
  assert.deepEqual(removeStaleTemps(path.join(tmp, 'absent')), []);
});

test('output directories: a file is never replaced, a non-empty directory needs --force, an empty one is fine', () => {
  const rules = { verb: 'import', force: false, writes: 'model.safetensors' };
  const file = path.join(tmp, 'a-file');
  fs.writeFileSync(file, 'precious');
  assert.throws(() => checkOutputDir(file, rules), /a-file exists and is not a directory; lmforge never replaces it/);
  assert.throws(() => checkOutputDir(file, { ...rules, force: true }), /not a directory/);
  const full = path.join(tmp, 'full-dir');
  fs.mkdirSync(full);
  fs.writeFileSync(path.join(full, 'notes.txt'), 'mine');
  assert.throws(() => checkOutputDir(full, rules), /full-dir is not empty \(notes\.txt\).*--force to replace only the files import writes \(model\.safetensors\)/);
  checkOutputDir(full, { ...rules, force: true });
  const empty = path.join(tmp, 'empty-dir');
  fs.mkdirSync(empty);
  const staging = `${empty}.tmp-${deadPid()}`; // what a killed import left beside its output
  fs.mkdirSync(staging);
  checkOutputDir(empty, rules);
  assert.ok(!fs.existsSync(staging));
  checkOutputDir(path.join(tmp, 'missing'), rules);
});

test('publishDir: a new directory arrives whole; an existing one keeps foreign files and loses only stale owned ones', () => {
  const dest = path.join(tmp, 'pub');
  const stage = (files: Record<string, string>): string => {
    const t = tmpPath(dest);
    fs.mkdirSync(t);
    for (const [n, v] of Object.entries(files)) fs.writeFileSync(path.join(t, n), v);
    return t;
  };
  publishDir(stage({ 'a.bin': '1', 'b.bin': '1' }), dest, (n) => n.endsWith('.bin'));
  fs.writeFileSync(path.join(dest, 'mine.txt'), 'keep');
  publishDir(stage({ 'a.bin': '2' }), dest, (n) => n.endsWith('.bin'));
  assert.deepEqual(fs.readdirSync(dest).sort(), ['a.bin', 'mine.txt']);
  assert.equal(fs.readFileSync(path.join(dest, 'a.bin'), 'utf8'), '2');
  assert.ok(!fs.existsSync(tmpPath(dest)));
});
