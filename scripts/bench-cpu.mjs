#!/usr/bin/env node
// Side-by-side CPU benchmark: lmforge vs the plain PyTorch peer (../shared/peers/torch_qwen3_cpu.py), same presets,
// same thread count, interleaved runs on the same machine. Prints a markdown table with medians, spreads and ratios.
//   node scripts/bench-cpu.mjs [--runs 3] [--steps 5] [--threads 2] [--presets cpu-realvocab,cpu-small] [--peer PATH]
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const runs = Number(arg('runs', 3));
const steps = Number(arg('steps', 5));
const threads = Number(arg('threads', 2));
const presets = arg('presets', 'cpu-realvocab,cpu-small').split(',');
const peer = arg('peer', join(root, '..', 'shared', 'peers', 'torch_qwen3_cpu.py'));
if (!existsSync(peer)) throw new Error(`peer script not found at ${peer} (pass --peer PATH)`);

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const lastJson = (out) => JSON.parse(out.trim().split('\n').filter((l) => l.startsWith('{')).pop());

function runPeer(preset) {
  // The peer fixes its own thread count (2); OMP_NUM_THREADS keeps OpenBLAS in line with it.
  const env = { ...process.env, OMP_NUM_THREADS: String(threads) };
  const r = spawnSync('/usr/bin/python3', [peer, 'bench', preset, String(steps)], { encoding: 'utf8', env });
  if (r.status !== 0) throw new Error(`peer failed: ${r.stderr}`);
  return lastJson(r.stdout).step_s;
}
function runOurs(preset) {
  const r = spawnSync(process.execPath, [join(root, 'bin', 'lmforge.js'), 'bench', '--preset', preset, '--steps', String(steps), '--threads', String(threads)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`lmforge bench failed: ${r.stderr}`);
  return lastJson(r.stdout);
}

const rows = [];
for (const preset of presets) {
  const p = [];
  const o = [];
  let last;
  for (let i = 0; i < runs; i++) {
    p.push(runPeer(preset));
    last = runOurs(preset);
    o.push(last.step_s);
    process.stderr.write(`${preset} run ${i + 1}/${runs}: peer ${p.at(-1)} s/step, lmforge ${o.at(-1)} s/step\n`);
  }
  const tokens = last.B * last.T;
  rows.push({ preset, tokens, p, o, rss: last.peak_rss_mib, gflops: last.gflops_per_s });
}
console.log(`| preset | tokens/step | peer step s (median, min-max) | lmforge step s (median, min-max) | peer tok/s | lmforge tok/s | speed-up |`);
console.log(`| --- | --- | --- | --- | --- | --- | --- |`);
for (const r of rows) {
  const mp = median(r.p), mo = median(r.o);
  const f = (x) => x.toFixed(3);
  console.log(`| ${r.preset} | ${r.tokens} | ${f(mp)} (${f(Math.min(...r.p))}-${f(Math.max(...r.p))}) | ${f(mo)} (${f(Math.min(...r.o))}-${f(Math.max(...r.o))}) | ${(r.tokens / mp).toFixed(1)} | ${(r.tokens / mo).toFixed(1)} | ${(mp / mo).toFixed(2)}x |`);
}
console.log(`\n${runs} interleaved runs of ${steps} timed steps each, ${threads} threads, ${new Date().toISOString()}`);
