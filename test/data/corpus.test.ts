/** data/corpus.ts: a kill during the bundled corpus's first preparation leaves nothing behind for good. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bundledCorpusDir, ensureBundledCorpus } from '../../src/data/corpus.js';
import { deadPid } from '../fs-faults.js';
import { tmpDir } from './helpers.js';

const cache = tmpDir('corpus-cache');
process.on('exit', () => fs.rmSync(cache, { recursive: true, force: true }));

test('the temporary directory of a killed first-use preparation is removed on the next start', async () => {
  // A prepared corpus stands in (manifest.json is what marks it done), so no real preparation runs here.
  const dir = bundledCorpusDir(cache);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'manifest.json'), '{}');
  const name = path.basename(dir);
  const dead = deadPid();
  const leftover = path.join(cache, `${name}.tmp-${dead}`);
  fs.mkdirSync(leftover);
  fs.writeFileSync(path.join(leftover, 'train-00000.bin.tmp'), 'partial');
  const live = path.join(cache, `${name}.tmp-${process.ppid}`);
  fs.mkdirSync(live);
  const other = path.join(cache, `notes.tmp-${dead}`);
  fs.writeFileSync(other, 'not ours');
  assert.equal(await ensureBundledCorpus(cache, { log: () => {} }), dir);
  assert.ok(!fs.existsSync(leftover), 'the dead process\'s temporary corpus directory was removed');
  assert.ok(fs.existsSync(live), 'a live process\'s preparation is left alone');
  assert.ok(fs.existsSync(other), 'only corpus temporaries are touched');
});
