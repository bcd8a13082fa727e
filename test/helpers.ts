/** Shared test plumbing: where the repository and ../shared are, and the relative error the golden README uses. */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Tests run compiled from dist/test/, two levels below the repository root. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SHARED = process.env.LMFORGE_SHARED ?? resolve(REPO_ROOT, '..', 'shared');
export const LONG = process.env.LMFORGE_LONG_TESTS === '1';
export const CLI = join(REPO_ROOT, 'bin', 'lmforge.js');

/** ||a - b|| / ||b|| (L2), as the golden README defines it. */
export { relErrL2 as relErr } from '../src/train/golden.js';
