/** Shared test plumbing: where the repository and ../shared are, and the relative error the golden README uses. */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Tests run compiled from dist/test/, two levels below the repository root. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SHARED = process.env.LMFORGE_SHARED ?? resolve(REPO_ROOT, '..', 'shared');
export const LONG = process.env.LMFORGE_LONG_TESTS === '1';
export const CLI = join(REPO_ROOT, 'bin', 'lmforge.js');

/** ||a - b|| / ||b|| (L2). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    num += d * d;
    den += b[i]! * b[i]!;
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}
