#!/usr/bin/env node
// Preparation throughput (MB/s of input) with 1 and 2 workers, against the tokenizer library's own
// single-thread encode rate on the same text (the ceiling). Input: the bundled corpus (State of the Union
// addresses, ~10.7 MB) as JSONL, repeated --repeat times (default 4, ~43 MB) so that the fixed start-up
// (~0.3 s: each worker parses tokenizer.json) does not dominate; the start-up is measured and printed apart.
// Run after `npm run build`:  node scripts/bench-prepare.mjs [--runs 3] [--repeat 4]
// Prints one JSON line per measurement and a summary (median and min..max).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundledCorpusFiles } from '../dist/src/data/corpus.js';
import { prepare } from '../dist/src/data/prepare.js';
import { loadTokenizer } from '../dist/src/data/tokenizer.js';

const flag = (name, def) => (process.argv.includes(`--${name}`) ? Number(process.argv[process.argv.indexOf(`--${name}`) + 1]) : def);
const runs = flag('runs', 3);
const repeat = flag('repeat', 4);
process.env.TOKENIZERS_PARALLELISM = 'false';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lmforge-bench-'));
const texts = bundledCorpusFiles().files.map((f) => fs.readFileSync(f, 'utf8'));
const input = path.join(tmp, 'sotu.jsonl');
const once = texts.map((t) => JSON.stringify({ text: t })).join('\n') + '\n';
fs.writeFileSync(input, once.repeat(repeat));
const mb = fs.statSync(input).size / 1e6;

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = { library: [], workers1: [], workers2: [] };

const tok = loadTokenizer();
const plain = tok.plain;
for (let r = 0; r < runs; r++) {
  // Ceiling: the library encoding the same documents one by one on one thread, no separators, no I/O.
  let t0 = performance.now();
  for (const t of texts) (await plain.encode(t)).getIds();
  results.library.push(mb / repeat / ((performance.now() - t0) / 1000));
  for (const w of [1, 2]) {
    const out = path.join(tmp, `out-${w}-${r}`);
    t0 = performance.now();
    await prepare({ inputs: [input], out, workers: w, progress: false, log: () => {} });
    results[`workers${w}`].push(mb / ((performance.now() - t0) / 1000));
    fs.rmSync(out, { recursive: true, force: true });
  }
  console.log(JSON.stringify({ run: r, mb: +mb.toFixed(2), library: +results.library[r].toFixed(2), workers1: +results.workers1[r].toFixed(2), workers2: +results.workers2[r].toFixed(2) }));
}
// Fixed cost: prepare of a one-line input (worker start-up, tokenizer parse, manifest).
const tiny = path.join(tmp, 'tiny.jsonl');
fs.writeFileSync(tiny, '{"text":"hello"}\n');
const startup = {};
for (const w of [1, 2]) {
  const out = path.join(tmp, `tiny-${w}`);
  const t0 = performance.now();
  await prepare({ inputs: [tiny], out, workers: w, progress: false, log: () => {} });
  startup[w] = ((performance.now() - t0) / 1000).toFixed(2);
}
const s = (k) => `${median(results[k]).toFixed(2)} MB/s (${Math.min(...results[k]).toFixed(2)}..${Math.max(...results[k]).toFixed(2)})`;
console.log(`start-up (one-line input): ${startup[1]} s with 1 worker, ${startup[2]} s with 2`);
console.log(`input ${mb.toFixed(1)} MB JSONL (corpus x${repeat}), ${runs} runs, ${os.cpus().length} CPUs, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
console.log(`library single-thread encode: ${s('library')}`);
console.log(`prepare, 1 worker:            ${s('workers1')}  = ${(median(results.workers1) / median(results.library) * 100).toFixed(0)}% of the library`);
console.log(`prepare, 2 workers:           ${s('workers2')}  = ${(median(results.workers2) / median(results.workers1)).toFixed(2)}x one worker`);
fs.rmSync(tmp, { recursive: true, force: true });
