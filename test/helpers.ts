/** Shared test plumbing: where the repository and the golden cases are, and the relative error the golden README uses. */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Tests run compiled from dist/test/, two levels below the repository root. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The public golden cases from Hugging Face transformers, shipped with the tests (see its README.md). */
export const GOLDEN_FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'golden');
export const LONG = process.env.LMFORGE_LONG_TESTS === '1';
export const CLI = join(REPO_ROOT, 'bin', 'lmforge.js');

/** ||a - b|| / ||b|| (L2), as the golden README defines it (the tests' own, not the library's). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}
import { listGoldenCases } from '../src/parity/golden.js';

/**
 * Every golden case to hold the code to, by name: the fixtures, plus any more cases under $LMFORGE_SHARED/golden
 * (default: ../shared/golden beside the repository, when there is one). A case there replaces the fixture of the
 * same name. Nothing fails when neither exists.
 */
export function goldenCases(): Map<string, string> {
  const shared = process.env.LMFORGE_SHARED ?? resolve(REPO_ROOT, '..', 'shared');
  return listGoldenCases([GOLDEN_FIXTURES, join(shared, 'golden')]);
}

/** One golden case directory by name (the four public ones always exist). */
export function goldenCase(name: string): string {
  const dir = goldenCases().get(name);
  if (!dir) throw new Error(`golden case '${name}' not found in ${GOLDEN_FIXTURES}`);
  return dir;
}
