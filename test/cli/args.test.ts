/** cli/args.ts: the strict flag parser every verb shares. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs, usage, UsageError, type FlagSpec } from '../../src/cli/args.js';

const SPEC: Record<string, FlagSpec> = {
  zero1: { type: 'boolean', help: 'a switch' },
  steps: { type: 'number', help: 'a number', default: 5 },
  name: { type: 'string', help: 'a string' },
  set: { type: 'list', help: 'values' },
};

test('booleans: bare is true, =true/=false (and 1/0, yes/no, on/off) set it, anything else is an error', () => {
  assert.equal(parseArgs('v', ['--zero1'], SPEC).flags.zero1, true);
  for (const t of ['true', 'TRUE', '1', 'yes', 'on']) assert.equal(parseArgs('v', [`--zero1=${t}`], SPEC).flags.zero1, true, t);
  for (const f of ['false', 'False', '0', 'no', 'off']) assert.equal(parseArgs('v', [`--zero1=${f}`], SPEC).flags.zero1, false, f);
  assert.equal(parseArgs('v', [], SPEC).flags.zero1, undefined);
  assert.throws(() => parseArgs('v', ['--zero1=maybe'], SPEC), (e: unknown) => e instanceof UsageError && /^v: --zero1 takes no value, or =true \/ =false; got '--zero1=maybe'$/.test(e.message));
  // A bare boolean does not swallow the next argument.
  assert.deepEqual(parseArgs('v', ['--zero1', 'pos'], SPEC), { flags: { zero1: true, steps: 5 }, positionals: ['pos'] });
});

test('values, lists, defaults and positionals', () => {
  const p = parseArgs('v', ['a', '--steps', '12', '--name=x', '--set', 'k=1', 'j=2', '--set', 'm=3', 'b'], SPEC);
  assert.deepEqual(p.flags, { steps: 12, name: 'x', set: ['k=1', 'j=2', 'm=3', 'b'] });
  assert.deepEqual(p.positionals, ['a']);
  assert.equal(parseArgs('v', ['--steps=1e3'], SPEC).flags.steps, 1000);
  assert.deepEqual(parseArgs('v', ['--'], SPEC).positionals, ['--']);
});

test('errors name the flag and the fix', () => {
  assert.throws(() => parseArgs('train', ['--stpes', '3'], SPEC), /train: unknown flag --stpes\. Known flags: --zero1, --steps, --name, --set$/);
  assert.throws(() => parseArgs('v', ['--steps', 'many'], SPEC), /v: --steps expects a number, got 'many'$/);
  assert.throws(() => parseArgs('v', ['--steps'], SPEC), /v: --steps needs a value$/);
  assert.throws(() => parseArgs('v', ['--name'], SPEC), /v: --name needs a value$/);
  assert.throws(() => parseArgs('v', ['--set', '--zero1'], SPEC), /v: --set needs at least one value$/);
  assert.throws(() => parseArgs('v', ['--x'], {}), /Known flags: \(none\)/);
});

test('usage lists every flag with its help and default', () => {
  assert.equal(usage('v', '[flags]', SPEC), [
    'usage: lmforge v [flags]',
    '  --zero1            a switch',
    '  --steps            a number (default 5)',
    '  --name             a string',
    '  --set              values',
  ].join('\n'));
});
