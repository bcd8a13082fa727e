/**
 * Keeps docs/architecture.md's claim true: every reference backward in reference.ts (a function named *BackwardRef
 * or *GradRef) is checked against central finite differences (fdCheck) in a test of this folder.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers.js';

const DIR = join(REPO_ROOT, 'test', 'engine');

test('every reference backward has a finite-difference check', () => {
  const reference = readFileSync(join(DIR, 'reference.ts'), 'utf8');
  const backwards = [...reference.matchAll(/export function (\w+(?:BackwardRef|GradRef))\(/g)].map((m) => m[1]!);
  assert.ok(backwards.length >= 7, `found ${backwards.join(', ')}`);
  const tests = readdirSync(DIR).filter((f) => f.endsWith('.test.ts')).map((f) => readFileSync(join(DIR, f), 'utf8'));
  // A test body (from one test( to the next) that calls both the backward and fdCheck.
  const bodies = tests.flatMap((t) => t.split(/\ntest\(/));
  const unchecked = backwards.filter((b) => !bodies.some((body) => body.includes(`${b}(`) && body.includes('fdCheck(')));
  assert.deepEqual(unchecked, []);
});
