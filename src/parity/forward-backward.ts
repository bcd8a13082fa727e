/**
 * The parity computation behind `lmforge forward-backward`: logits, loss and every gradient of a Hugging Face
 * model on one batch, and optionally N AdamW steps on that batch, with the semantics of transformers'
 * ForCausalLMLoss (position t predicts label t+1, -100 ignored, mean over counted tokens).
 */
import type { Backend } from '../engine/backend.js';
import { Decoder, IGNORE_INDEX } from '../model/decoder.js';
import type { TensorSource } from '../io/tensor-source.js';
import { hfTensors, loadWeights } from '../model/weights.js';
import type { ModelConfig } from '../config/model.js';
import { AdamW, clipCoefficient, type AdamWConfig } from '../train/adamw.js';

export interface ParityTensor {
  name: string;
  dtype: 'F32' | 'F64';
  shape: number[];
  data: Float32Array | Float64Array;
}

export interface ParityOptions {
  trainSteps: number;
  optim: AdamWConfig;
}

/** targets[b, t] = labels[b, t + 1]; the last position of each row predicts nothing. */
export function shiftLabels(labels: Int32Array, batch: number, seq: number): Int32Array {
  const out = new Int32Array(batch * seq).fill(IGNORE_INDEX);
  for (let b = 0; b < batch; b++) for (let t = 0; t + 1 < seq; t++) out[b * seq + t] = labels[b * seq + t + 1]!;
  return out;
}

export function countTargets(targets: Int32Array): number {
  let n = 0;
  for (const t of targets) if (t !== IGNORE_INDEX) n++;
  return n;
}

export function forwardBackward(
  be: Backend, cfg: ModelConfig, weights: TensorSource, source: string,
  ids: Int32Array, labels: Int32Array, batch: number, seq: number, o: ParityOptions,
): ParityTensor[] {
  const model = new Decoder(be, cfg);
  try {
    loadWeights(model, weights, source);
    const targets = shiftLabels(labels, batch, seq);
    const count = countTargets(targets);
    if (count === 0) throw new Error('every label is -100 (or only the first position is labelled): there is no token to compute a loss on');
    const step = (logits?: Float32Array): number => {
      model.zeroGrads();
      model.resetLoss();
      model.run(ids, targets, { batch, seq, backward: true, gradScale: 1 / count, logits });
      return model.takeLoss() / count;
    };
    const logits = new Float32Array(batch * seq * cfg.vocab_size);
    const loss = step(logits);
    const out: ParityTensor[] = [
      { name: 'logits', dtype: 'F32', shape: [batch, seq, cfg.vocab_size], data: logits },
      { name: 'loss', dtype: 'F64', shape: [1], data: Float64Array.of(loss) },
    ];
    for (const t of hfTensors(model, 'grads')) out.push({ name: `grad.${t.name}`, dtype: 'F32', shape: t.shape, data: t.data });

    if (o.trainSteps > 0) {
      const opt = new AdamW(be, model, o.optim);
      const losses: number[] = [];
      const norms: number[] = [];
      let current = loss;
      for (let i = 0; i < o.trainSteps; i++) {
        if (i > 0) current = step();
        losses.push(current);
        const norm = model.gradNorm();
        norms.push(norm);
        opt.update(o.optim.lr, clipCoefficient(norm, o.optim.clip));
      }
      model.resetLoss();
      model.run(ids, targets, { batch, seq, backward: false });
      losses.push(model.takeLoss() / count);
      opt.dispose();
      out.push({ name: 'train.losses', dtype: 'F64', shape: [losses.length], data: Float64Array.from(losses) });
      out.push({ name: 'train.grad_norms', dtype: 'F64', shape: [norms.length], data: Float64Array.from(norms) });
      for (const t of hfTensors(model, 'params')) out.push({ name: `train.final.${t.name}`, dtype: 'F32', shape: t.shape, data: t.data });
    }
    return out;
  } finally {
    model.dispose();
  }
}
