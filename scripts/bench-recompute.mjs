#!/usr/bin/env node
// The time cost of activation recomputation on the CPU engine: one model per mode (none, mlp, block; same weights
// and tokens), forward + backward timed in rounds that visit every mode in turn (a rotating order), so load from
// other processes falls on all modes alike. Prints each mode's median step, its median ratio to none within a
// round, the arena size, and checks that the losses agree bit for bit.
// Usage: npx tsc -p . && node scripts/bench-recompute.mjs [--preset cpu-small] [--batch 2] [--seq 256] [--rounds 7] [--threads 2]
import { createBackend } from '../dist/src/engine/index.js';
import { Decoder } from '../dist/src/model/decoder.js';
import { initWeights } from '../dist/src/model/init.js';
import { getPreset } from '../dist/src/config/presets.js';
import { RECOMPUTE_MODES } from '../dist/src/config/train.js';
import { Rng } from '../dist/src/model/rng.js';

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : dflt;
};
const preset = opt('--preset', 'cpu-small');
const batch = Number(opt('--batch', 2));
const seq = Number(opt('--seq', 256));
const rounds = Number(opt('--rounds', 7));
const cfg = getPreset(preset);
const be = createBackend('cpu');
if (opt('--threads')) be.setThreads(Number(opt('--threads')));
const N = batch * seq;
const rng = new Rng(1);
const ids = Int32Array.from({ length: N }, () => rng.int(cfg.vocab_size));
const targets = Int32Array.from({ length: N }, (_, i) => ids[(i + 1) % N]);

const models = RECOMPUTE_MODES.map((mode) => {
  const m = new Decoder(be, cfg);
  m.setRecompute(mode);
  initWeights(m, { seed: 0, scaledResidual: false });
  return { mode, m, times: [], loss: 0 };
});
const step = (x) => {
  x.m.zeroGrads();
  x.m.resetLoss();
  const t0 = process.hrtime.bigint();
  x.m.run(ids, targets, { batch, seq, backward: true, gradScale: 1 / N });
  x.loss = x.m.takeLoss();
  return Number(process.hrtime.bigint() - t0) / 1e9;
};
for (const x of models) step(x); // warm-up: allocates each arena
for (let r = 0; r < rounds; r++)
  for (let k = 0; k < models.length; k++) {
    const x = models[(r + k) % models.length];
    x.times.push(step(x));
  }
const median = (a) => {
  const s = [...a].sort((p, q) => p - q);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
console.log(`${preset} B${batch} T${seq}, ${be.describe()}; forward + backward, ${rounds} rounds`);
const base = models[0];
for (const x of models) {
  const ratio = median(x.times.map((t, r) => t / base.times[r]));
  console.log(
    `${x.mode.padEnd(6)} median ${median(x.times).toFixed(3)} s (min ${Math.min(...x.times).toFixed(3)}, max ${Math.max(...x.times).toFixed(3)})` +
      `  x${ratio.toFixed(3)} of none  arena ${(x.m.activationBytes / 2 ** 20).toFixed(1)} MiB` +
      `  loss ${x.loss === base.loss ? 'equal' : `DIFFERS (${x.loss} vs ${base.loss})`}`,
  );
}
for (const x of models) x.m.dispose();
