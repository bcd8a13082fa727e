/** The Python string semantics the harness's templates rely on; expected values printed by CPython 3.11. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pyCapitalize, pyLen, pyRstrip, pyStrip } from '../../src/eval/python-text.js';

test('capitalize: title case first, lower case rest, final sigma, multi-character mappings', () => {
  const cases: [string, string][] = [
    ['then the WOMAN', 'Then the woman'],
    ['\u01c6emal', '\u01c5emal'],
    ['\u00dftra\u00dfe', 'Sstra\u00dfe'],
    ['\ufb01sh \ufb02y', 'Fish \ufb02y'],
    ['\u039f\u0394\u039f\u03a3 \u03a3\u0391\u03a3', '\u039f\u03b4\u03bf\u03c2 \u03c3\u03b1\u03c2'],
    ['\u03a3\u0391', '\u03a3\u03b1'],
    ['\u0130STANBUL', '\u0130stanbul'],
    ['\u1fb3 test', '\u1fbc test'],
    ['\u10d0bc', '\u10d0bc'],
    ['', ''],
    ['x', 'X'],
    ['  spaced  ', '  spaced  '],
  ];
  for (const [input, want] of cases) assert.equal(pyCapitalize(input), want, JSON.stringify(input));
});

test('strip and rstrip use Python whitespace (0x1c-0x1f and U+0085 yes, U+FEFF no)', () => {
  assert.equal(pyStrip('\x1c\x85 a b \u2003\ufeff'), 'a b \u2003\ufeff');
  assert.equal(pyRstrip('Answer: \t\n'), 'Answer:');
  assert.equal(pyRstrip('x\x1f'), 'x');
  assert.equal(pyStrip('\ufeffx'), '\ufeffx');
});

test('len counts code points', () => {
  assert.equal(pyLen('a\u{1F600}b'), 3);
  assert.equal(pyLen('caf\u00e9'), 4);
});
