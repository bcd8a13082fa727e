/** data/manifest.ts: manifest and progress JSON are written whole (every byte, then renamed) or not at all. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeJsonAtomic } from '../../src/data/manifest.js';
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
