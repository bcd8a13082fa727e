#!/usr/bin/env node
// Where a training step's time goes, per backend op (the CPU backend runs each op synchronously, so wall time
// per call is its cost). node scripts/profile-step.mjs [--preset cpu-small] [--steps 3] [--threads 2]
import { createBackend } from '../dist/src/engine/index.js';
import { Decoder } from '../dist/src/model/decoder.js';
import { initWeights } from '../dist/src/model/init.js';
import { AdamW, ADAMW_DEFAULTS, clipCoefficient } from '../dist/src/train/adamw.js';
import { getPreset, PRESET_BATCH } from '../dist/src/config/presets.js';

const arg = (n, d) => { const i = process.argv.indexOf(`--${n}`); return i > 0 ? process.argv[i + 1] : d; };
const preset = arg('preset', 'cpu-small');
const steps = Number(arg('steps', 3));
const cfg = getPreset(preset);
const { batch, seq } = PRESET_BATCH[preset] ?? { batch: 4, seq: 256 };
const be = createBackend('cpu');
be.setThreads(Number(arg('threads', 2)));
const times = new Map();
const timed = new Proxy(be, {
  get(target, prop) {
    const v = target[prop];
    if (typeof v !== 'function') return v;
    return (...args) => {
      const t0 = performance.now();
      const r = v.apply(target, args);
      const k = prop === 'matmul' ? `matmul ${args[3]}x${args[4]}x${args[5]}${args[6]?.transA ? ' (dW)' : ''}` : String(prop);
      times.set(k, (times.get(k) ?? 0) + performance.now() - t0);
      return r;
    };
  },
});
const model = new Decoder(timed, cfg);
initWeights(model, { seed: 0, scaledResidual: false });
const opt = new AdamW(timed, model, { ...ADAMW_DEFAULTS });
const N = batch * seq;
const ids = Int32Array.from({ length: N }, (_, i) => (i * 7919) % cfg.vocab_size);
const targets = Int32Array.from({ length: N }, (_, i) => (i % seq === seq - 1 ? -100 : ids[i + 1]));
const step = () => {
  model.zeroGrads();
  model.resetLoss();
  model.run(ids, targets, { batch, seq, backward: true, gradScale: 1 / N });
  opt.update(1e-3, clipCoefficient(model.gradNorm(), 1));
  model.takeLoss();
};
step();
times.clear();
const t0 = performance.now();
for (let i = 0; i < steps; i++) step();
const total = (performance.now() - t0) / steps;
const rows = [...times].map(([k, t]) => [k, t / steps]).sort((a, b) => b[1] - a[1]);
console.log(`${preset}: batch ${batch} x seq ${seq}, ${be.describe()}; ${total.toFixed(1)} ms/step`);
for (const [k, t] of rows) console.log(`${(t).toFixed(1).padStart(9)} ms  ${((100 * t) / total).toFixed(1).padStart(5)}%  ${k}`);
