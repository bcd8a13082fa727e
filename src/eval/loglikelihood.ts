/**
 * Log-likelihood of continuations, batched: each request becomes one row `context + continuation` (left-truncated
 * to the model's context length, the last token dropped, as the harness does), rows are sorted longest first and
 * packed into right-padded batches of about `batchTokens` tokens, and one forward per batch gives, at every
 * continuation position, log P(token) and whether the token is the argmax (greedy) prediction.
 *
 * Two ways to get those per-position figures:
 * - 'engine': the fused head op (`Backend.headLogprob`) on the continuation rows only; full logits never leave
 *   the device, so any vocabulary and any device works.
 * - 'host': the full logits of the batch are downloaded and reduced here in float64 (log-softmax over the
 *   whole row). The reference the tests hold the engine path to; costly for large vocabularies.
 */
import type { Decoder, TargetScores } from '../model/decoder.js';
import { IGNORE_INDEX } from '../model/decoder.js';
import type { TokenRequest } from './requests.js';

export interface Scored {
  /** Sum over the continuation's tokens of log P(token | everything before it). */
  logprob: number;
  /** Every continuation token is the model's argmax prediction (first index on ties, as torch.argmax). */
  greedy: boolean;
  /** Continuation tokens scored. */
  tokens: number;
}

export type ScoreMethod = 'engine' | 'host';

export interface ScoreOptions {
  /** Padded tokens per forward (batch rows x padded length); default 2048. */
  batchTokens?: number;
  method?: ScoreMethod;
  /** Called after each forward with the requests scored so far. */
  onProgress?(done: number, total: number): void;
}


interface Row {
  request: number;
  /** Input tokens (at most context_length). */
  input: number[];
  /** The continuation tokens; the last `target.length` inputs' next tokens. */
  target: readonly number[];
}

/** Padded row length: a multiple of 8 (fewer distinct shapes, so fewer activation re-allocations), at most `max`. */
function paddedLength(n: number, max: number): number {
  return Math.min(max, Math.ceil(n / 8) * 8);
}

export function scoreRequests(model: Decoder, requests: readonly TokenRequest[], o: ScoreOptions = {}): Scored[] {
  const L = model.cfg.context_length;
  const V = model.cfg.vocab_size;
  const method = o.method ?? 'engine';
  let budget = Math.max(1, Math.floor(o.batchTokens ?? 2048));
  // The host path holds the batch's logits on the host: keep them under about 256 MB.
  if (method === 'host') budget = Math.max(1, Math.min(budget, Math.floor((64 << 20) / V)));
  const rows: Row[] = requests.map((r, i) => {
    if (r.continuation.length === 0) throw new Error(`request ${i}: the continuation has no tokens`);
    if (r.continuation.length > L)
      throw new Error(`request ${i}: the continuation has ${r.continuation.length} tokens, more than the model's context_length ${L}`);
    for (const id of [...r.context, ...r.continuation])
      if (!Number.isInteger(id) || id < 0 || id >= V)
        throw new Error(`request ${i}: token id ${id} is outside the model's vocabulary [0, ${V}); does the tokenizer belong to this model?`);
    const all = [...r.context, ...r.continuation];
    return { request: i, input: all.slice(-(L + 1)).slice(0, -1), target: r.continuation };
  });
  // Longest first (equal lengths keep input order), so a batch's first row sets its padded length.
  const order = rows.map((_, i) => i).sort((a, b) => rows[b]!.input.length - rows[a]!.input.length || a - b);
  const out: Scored[] = new Array<Scored>(requests.length);
  let done = 0;
  for (let start = 0; start < order.length; ) {
    const seq = paddedLength(rows[order[start]!]!.input.length, L);
    const batch = Math.max(1, Math.min(order.length - start, Math.floor(budget / seq)));
    const ids = new Int32Array(batch * seq);
    const targets = new Int32Array(batch * seq).fill(IGNORE_INDEX);
    for (let b = 0; b < batch; b++) {
      const row = rows[order[start + b]!]!;
      ids.set(row.input, b * seq);
      const first = row.input.length - row.target.length;
      for (let j = 0; j < row.target.length; j++) targets[b * seq + first + j] = row.target[j]!;
    }
    const s = method === 'engine' ? model.scoreTargets(ids, targets, batch, seq) : hostScores(model, ids, targets, batch, seq);
    for (let b = 0; b < batch; b++) {
      const row = rows[order[start + b]!]!;
      const first = b * seq + row.input.length - row.target.length;
      let lp = 0;
      let greedy = true;
      for (let j = 0; j < row.target.length; j++) {
        lp += s.logprob[first + j]!;
        if (s.argmax[first + j] !== row.target[j]) greedy = false;
      }
      out[row.request] = { logprob: lp, greedy, tokens: row.target.length };
    }
    start += batch;
    done += batch;
    o.onProgress?.(done, order.length);
  }
  return out;
}

/** The reference: full logits to the host, log-softmax in float64 at every counted position. */
export function hostScores(model: Decoder, ids: Int32Array, targets: Int32Array, batch: number, seq: number): TargetScores {
  const V = model.cfg.vocab_size;
  const N = batch * seq;
  const logits = new Float32Array(N * V);
  model.run(ids, targets, { batch, seq, backward: false, logits });
  model.resetLoss();
  const logprob = new Float64Array(N);
  const argmax = new Int32Array(N).fill(-1);
  for (let n = 0; n < N; n++) {
    const t = targets[n]!;
    if (t === IGNORE_INDEX) continue;
    const row = logits.subarray(n * V, (n + 1) * V);
    let best = 0;
    for (let v = 1; v < V; v++) if (row[v]! > row[best]!) best = v;
    const mx = row[best]!;
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(row[v]! - mx);
    logprob[n] = row[t]! - mx - Math.log(sum);
    argmax[n] = best;
  }
  return { logprob, argmax };
}
