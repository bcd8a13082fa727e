/**
 * The op table (src/engine/native/op_table.h) is the one definition of every native op's arguments: the engines
 * read each argument at its table position, src/engine/op-table.ts is the same table for TypeScript, and
 * native.ts passes every op's named arguments in its order. These tests hold the three together.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { at } from '../../src/engine/backend.js';
import { checkOpTable, marshal, type OpArgs, type OpName, type Typed } from '../../src/engine/native.js';
import { OP_TABLE } from '../../src/engine/op-table.js';
import { REPO_ROOT } from '../helpers.js';

type RawOp = (...args: unknown[]) => void;
const addon = createRequire(import.meta.url)(join(REPO_ROOT, 'build', 'Release', 'lmforge_cpu.node')) as
  Record<string, RawOp> & { opTable(): unknown };

const OPS = Object.keys(OP_TABLE) as OpName[];
const table = (op: OpName): readonly (readonly [string, string])[] => OP_TABLE[op];
const isBuffer = (kind: string): boolean => kind === 'buf' || kind === 'opt';

/** Each argument's first position in the call: a buffer takes two (handle, offset), anything else one. */
function positions(op: OpName): { name: string; kind: string; at: number }[] {
  let p = 0;
  return table(op).map(([name, kind]) => {
    const r = { name, kind, at: p };
    p += isBuffer(kind) ? 2 : 1;
    return r;
  });
}

test('src/engine/op-table.ts is the table the CPU engine was built from', () => {
  assert.deepEqual(addon.opTable(), OP_TABLE, 'src/engine/op-table.ts is stale: run `node scripts/gen-op-table.mjs`');
  for (const op of OPS) assert.equal(typeof addon[op], 'function', `the engine exports ${op}`);
  // A backend refuses an engine built from another table.
  assert.throws(() => checkOpTable('CPU', { ...OP_TABLE, add: [['n', 'int']] }), /built from another op table/);
  checkOpTable('CPU', addon.opTable());
});

test('marshal puts each named argument at its table position; a buffer as (handle, offset), null as (-1, 0)', () => {
  for (const op of OPS) {
    const named: Record<string, unknown> = {};
    const hosts: Typed[] = [];
    table(op).forEach(([name, kind], i) => {
      if (kind === 'opt' && i % 2 === 1) named[name] = null;
      else if (isBuffer(kind)) named[name] = at({ handle: 1000 + i, dtype: 'f32', length: 1 }, 2000 + i);
      else if (kind === 'flag') named[name] = i % 2 === 0;
      else if (kind === 'host') named[name] = hosts[i] = new Float32Array(i + 1);
      else named[name] = 3000 + i;
    });
    const values: unknown[] = marshal(op, named as OpArgs<typeof op>);
    const slots = positions(op);
    assert.equal(values.length, slots.reduce((n, s) => n + (isBuffer(s.kind) ? 2 : 1), 0), op);
    slots.forEach(({ name, kind, at: p }, i) => {
      const where = `${op}.${name} at ${p}`;
      if (kind === 'opt' && i % 2 === 1) assert.deepEqual(values.slice(p, p + 2), [-1, 0], where);
      else if (isBuffer(kind)) assert.deepEqual(values.slice(p, p + 2), [1000 + i, 2000 + i], where);
      else if (kind === 'flag') assert.equal(values[p], i % 2 === 0, where);
      else if (kind === 'host') assert.equal(values[p], hosts[i], where);
      else assert.equal(values[p], 3000 + i, where);
    });
  }
});

test('the engine reads every scalar at its table position, and takes exactly the table\'s argument count', () => {
  for (const op of OPS) {
    const slots = positions(op);
    // Valid-looking values everywhere: absent buffers, zeros, false, an empty typed array.
    const base: unknown[] = [];
    for (const { kind } of slots) {
      if (isBuffer(kind)) base.push(-1, 0);
      else if (kind === 'flag') base.push(false);
      else if (kind === 'host') base.push(new Float32Array(0));
      else base.push(0);
    }
    // Scalars are read first, in order: a wrong type at one position is the first failure, named by that position.
    for (const { name, kind, at: p } of slots) {
      if (isBuffer(kind) || kind === 'host') continue;
      const args = base.slice();
      args[p] = kind === 'flag' ? 1 : 'x';
      const want = kind === 'flag' ? 'a boolean' : 'a number';
      assert.throws(() => addon[op](...args), new RegExp(`^Error: ${op}: argument ${p} must be ${want}$`), `${op}.${name}`);
    }
    assert.throws(() => addon[op](...base.slice(1)), new RegExp(`^Error: ${op}: takes ${base.length} arguments but`), op);
  }
});
