/**
 * A few training steps of a small model on packed documents (document masking and per-document positions) under
 * one recompute mode: what test/model/recompute.test.ts (CPU engine) and test/engine-cuda/recompute.test.ts
 * compare bit for bit across modes.
 */
import type { Backend } from '../../src/engine/backend.js';
import type { ModelConfig } from '../../src/config/model.js';
import type { RecomputeMode } from '../../src/config/train.js';
import { Decoder } from '../../src/model/decoder.js';
import { initWeights } from '../../src/model/init.js';
import { AdamW, ADAMW_DEFAULTS } from '../../src/train/adamw.js';
import { documentSegments } from '../../src/data/documents.js';
import { Rng } from '../../src/model/rng.js';

export interface StepsResult {
  losses: number[];
  /** The gradient buffer after each step's backward. */
  grads: Float32Array[];
  /** The parameters after the last update. */
  params: Float32Array;
  activationBytes: number;
}

/** `steps` AdamW steps on the same random packed batch (EOS = the last token id), from seed 5. */
export function trainSteps(be: Backend, cfg: ModelConfig, mode: RecomputeMode, steps = 3, batch = 2, seq = 24): StepsResult {
  const m = new Decoder(be, cfg);
  m.setRecompute(mode);
  initWeights(m, { seed: 5, scaledResidual: true });
  const opt = new AdamW(be, m, { ...ADAMW_DEFAULTS, lr: 1e-2 });
  const N = batch * seq, V = cfg.vocab_size, eos = V - 1;
  const rng = new Rng(9);
  const ids = new Int32Array(N);
  for (let i = 0; i < N; i++) ids[i] = rng.next() < 0.15 ? eos : Math.floor(rng.next() * (V - 1));
  ids[seq - 1] = eos;
  ids[seq + 5] = eos;
  const targets = Int32Array.from(ids, (_, i) => (i % 7 === 3 ? -100 : Math.floor(rng.next() * V)));
  const d = documentSegments(ids, batch, seq, eos);
  const out: StepsResult = { losses: [], grads: [], params: new Float32Array(m.layout.total), activationBytes: 0 };
  try {
    for (let s = 0; s < steps; s++) {
      m.zeroGrads();
      m.resetLoss();
      m.run(ids, targets, { batch, seq, backward: true, gradScale: 1 / N, segments: d.cuSeqlens, positionIds: d.positions });
      out.losses.push(m.takeLoss());
      const g = new Float32Array(m.layout.total);
      be.download(m.gradPtr(0), g);
      out.grads.push(g);
      opt.update(1e-2, 1);
    }
    be.download(m.paramPtr(0), out.params);
    out.activationBytes = m.activationBytes;
  } finally {
    opt.dispose();
    m.dispose();
  }
  return out;
}

/** null when a and b hold the same bits, else where they first differ. */
export function firstDifference(a: Float32Array, b: Float32Array): string | null {
  if (a.length !== b.length) return `lengths ${a.length} and ${b.length}`;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return `element ${i}: ${a[i]} vs ${b[i]}`;
  return null;
}
