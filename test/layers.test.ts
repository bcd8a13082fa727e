/**
 * The architecture's one rule, checked: imports run down the layers and never up or sideways (docs/architecture.md).
 * A folder may import its own files and any folder on a lower layer; nothing else.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { REPO_ROOT } from './helpers.js';

/** Top to bottom. Folders on one line are peers: neither imports the other. */
export const LAYERS: readonly (readonly string[])[] = [
  ['cli'],
  ['sweep'],
  ['report', 'parity'],
  ['train'],
  ['plan', 'eval'],
  ['model', 'parallel'],
  ['io'],
  ['engine', 'data', 'config'],
  ['files'],
];

const SRC = join(REPO_ROOT, 'src');

function layerOf(folder: string): number {
  return LAYERS.findIndex((l) => l.includes(folder));
}

/** Why an import from folder `from` to folder `to` breaks the rule, or null when it is allowed. */
function violation(from: string, to: string): string | null {
  if (to === from) return null;
  if (to.startsWith('..')) return 'outside src/';
  if (layerOf(to) === layerOf(from)) return `${to} is a peer of ${from}`;
  return layerOf(to) > layerOf(from) ? null : `${to} is above ${from}`;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Relative imports of a file (static, dynamic and type-only), as src-relative paths. */
export function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)'(\.{1,2}\/[^']+)'/g)) {
    out.push(relative(SRC, normalize(join(dirname(file), m[1]!))));
  }
  return out;
}

test('every folder under src/ has a layer', () => {
  const folders = readdirSync(SRC).filter((f) => statSync(join(SRC, f)).isDirectory());
  for (const f of folders) assert.notEqual(layerOf(f), -1, `src/${f}/ is not in the layer table of test/layers.test.ts (and docs/architecture.md)`);
});

test('imports run down the layers only', () => {
  const bad: string[] = [];
  for (const file of tsFiles(SRC)) {
    const from = relative(SRC, file).split('/')[0]!;
    for (const target of importsOf(file)) {
      const why = violation(from, target.split('/')[0]!);
      if (why) bad.push(`${relative(REPO_ROOT, file)} imports ${target}: ${why}`);
    }
  }
  assert.deepEqual(bad, []);
});

test('the rule refuses upward, sideways and outside imports', () => {
  assert.equal(violation('train', 'model'), null);
  assert.equal(violation('model', 'model'), null);
  assert.match(violation('model', 'train') ?? '', /above/);
  assert.match(violation('engine', 'cli') ?? '', /above/);
  assert.match(violation('report', 'parity') ?? '', /peer/);
  assert.match(violation('io', '../test') ?? '', /outside/);
});
