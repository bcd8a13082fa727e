/**
 * Seeded initialisation: weight matrices and embeddings ~ N(0, init_std), optionally scaled by 1/sqrt(2 n_layer)
 * on residual output projections (GPT-2 / nanoGPT); norm gains 1; biases 0. Same seed, same weights.
 */
import type { Decoder } from './decoder.js';
import { Rng } from './rng.js';

export interface InitOptions {
  seed: number;
  /** Scale residual projections' std by 1/sqrt(2 * n_layer). */
  scaledResidual: boolean;
}

export function initWeights(model: Decoder, o: InitOptions): void {
  const rng = new Rng(o.seed);
  const std = model.cfg.init_std;
  const resid = o.scaledResidual ? std / Math.sqrt(2 * model.cfg.n_layer) : std;
  for (const spec of model.layout.params) {
    const data = new Float32Array(spec.size);
    if (spec.init === 'ones') data.fill(1);
    else if (spec.init === 'normal') rng.fillNormal(data, spec.residualProjection ? resid : std);
    model.setParam(spec, data);
  }
}
