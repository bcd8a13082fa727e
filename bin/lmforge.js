#!/usr/bin/env node
import { availableParallelism } from 'node:os';

// `prepare` encodes on libuv's thread pool (the tokenizer's async calls), which has 4 threads unless told
// otherwise before first use; size it to the machine so --workers beyond 4 still scale.
process.env.UV_THREADPOOL_SIZE ??= String(Math.max(4, availableParallelism()));
const { main } = await import('../dist/src/cli/main.js');
main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code ?? 0; },
  (err) => {
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`lmforge: ${msg}\n`);
    if (process.env.LMFORGE_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    process.exitCode = 1;
  },
);
