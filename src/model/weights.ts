/**
 * Moving named weights between the flat buffer and Hugging Face tensors. The only translation is GPT-2's Conv1D
 * orientation ([in, out] on disk, [out, in] here); names are identical on both sides.
 */
import type { Decoder } from './decoder.js';
import type { ParamSpec } from './layout.js';

import type { TensorSource } from '../io/tensor-source.js';

export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c]!;
  return out;
}

/** The shape a parameter has in a Hugging Face file. */
export function hfShape(spec: ParamSpec): number[] {
  return spec.hfTransposed ? [spec.shape[1]!, spec.shape[0]!] : spec.shape;
}

/**
 * Refuses a tensor holding NaN or Inf, naming it: such weights load "fine" and then produce garbage (a
 * generate that prints [0,0,0,0], a run that is NaN from its first step).
 */
export function checkFinite(name: string, data: Float32Array, source: string): void {
  for (let i = 0; i < data.length; i++) {
    const x = data[i]!;
    // x - x is 0 for every finite x and NaN for NaN and +-Inf: one comparison per element.
    if (x - x !== 0) {
      let bad = 0;
      for (let j = i; j < data.length; j++) if (!Number.isFinite(data[j]!)) bad++;
      throw new Error(
        `${source}: tensor '${name}' holds ${bad} non-finite value(s) (first: ${x} at element ${i} of ${data.length}); ` +
          `refusing to load it: the weights diverged or the file is damaged (resume from an earlier checkpoint with --from-step)`,
      );
    }
  }
}

export function loadWeights(model: Decoder, src: TensorSource, source: string): void {
  const missing: string[] = [];
  for (const spec of model.layout.params) {
    if (!src.has(spec.name)) {
      missing.push(spec.name);
      continue;
    }
    const want = hfShape(spec);
    const got = src.shape(spec.name);
    if (got.length !== want.length || got.some((d, i) => d !== want[i]))
      throw new Error(
        `${source}: tensor '${spec.name}' has shape [${got.join(', ')}] but the config implies [${want.join(', ')}]; ` +
          `the checkpoint does not match its config.json`,
      );
    let data = src.read(spec.name);
    checkFinite(spec.name, data, source);
    if (spec.hfTransposed) data = transpose2d(data, want[0]!, want[1]!);
    model.setParam(spec, data);
  }
  if (missing.length) {
    const extra = src.names().filter((n) => !model.layout.byName.has(n) && n !== 'lm_head.weight');
    throw new Error(
      `${source}: missing ${missing.length} tensor(s) the config needs: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''}` +
        (extra.length ? `; the file has unexpected tensors such as ${extra.slice(0, 3).join(', ')}` : '') +
        `; check that config.json belongs to these weights`,
    );
  }
  // A tied model may carry a duplicate lm_head.weight; it is accepted and ignored (the head is the embedding).
}

/** Every parameter (or its gradient) as Hugging Face-layout tensors. */
export function hfTensors(model: Decoder, from: 'params' | 'grads' = 'params'): NamedTensor[] {
  return model.layout.params.map((spec) => {
    let data = model.getParam(spec, from);
    if (spec.hfTransposed) data = transpose2d(data, spec.shape[0]!, spec.shape[1]!);
    return { name: spec.name, shape: hfShape(spec), data };
  });
}
