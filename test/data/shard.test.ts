/** data/shard.ts: a shard under its final name always holds what its header says, even when the disk fills. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readShardHeader, SHARD_HEADER_BYTES, ShardWriter } from '../../src/data/shard.js';
import { fullDisk, shortWrites, temporariesUnder, withFault } from '../fs-faults.js';
import { tmpDir } from './helpers.js';

const dir = tmpDir('shard');
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

const ids = (n: number) => Uint32Array.from({ length: n }, (_, i) => (i * 7919) % 1000);

function tokensOf(file: string): Uint32Array {
  const b = fs.readFileSync(file);
  return new Uint32Array(b.buffer.slice(b.byteOffset + SHARD_HEADER_BYTES, b.byteOffset + b.length));
}

test('short writes: the shard still holds every token', () => {
  const file = path.join(dir, 'train-00000.bin');
  const data = ids(300_001);
  withFault(shortWrites, () => {
    const w = new ShardWriter(file, 1000, 400_000);
    w.append(data);
    w.finish();
  });
  assert.equal(readShardHeader(file).tokens, data.length);
  assert.deepEqual(tokensOf(file), data);
});

test('a disk that fills during the last flush: no shard under the final name, an error naming it, no temporary left', () => {
  const file = path.join(dir, 'train-00001.bin');
  // Room for the header and part of the tokens: the final flush is cut short, the header rewrite at offset 0 is not.
  const data = ids(50_000);
  assert.throws(
    () =>
      withFault(() => fullDisk(SHARD_HEADER_BYTES + 150_000), () => {
        const w = new ShardWriter(file, 1000, 100_000);
        try {
          w.append(data);
          w.finish();
        } catch (e) {
          w.abort(); // as prepare does
          throw e;
        }
      }),
    (e: Error) => e.message.includes(file) && /no space left.*ENOSPC/.test(e.message),
  );
  assert.ok(!fs.existsSync(file), 'a truncated shard sits under its final name');
  assert.deepEqual(temporariesUnder(dir), []);
});
