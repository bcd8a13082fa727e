/**
 * From per-request log-likelihoods to per-example predictions and task metrics, as lm-evaluation-harness
 * computes them:
 * - `acc`: the choice with the highest summed log-likelihood is the label (numpy argmax: first index on ties);
 * - `acc_norm`: the same after dividing each log-likelihood by its choice's length in characters;
 * - cloze tasks (LAMBADA): `acc` is the share of examples whose every target token is the greedy prediction,
 *   `perplexity` is exp(-mean log-likelihood).
 * Standard errors: the sample standard deviation over sqrt(n) for means (the harness's `mean_stderr`); for
 * perplexity, the delta method ppl x stderr(mean log-likelihood) (the harness bootstraps it).
 */
import type { Scored } from './loglikelihood.js';
import { pyLen, utf8Length } from './python-text.js';
import type { Example, MetricName } from './task.js';

/** One example's line in `--details`: enough to audit its score against another implementation. */
export interface ExampleDetail {
  index: number;
  /** Summed log-likelihood per choice (one entry for a cloze example). */
  loglikelihoods: number[];
  /** Continuation tokens scored per choice. */
  tokens: number[];
  /** UTF-8 bytes of each choice's text (null for token-id tasks). */
  bytes: number[] | null;
  /** Characters (code points) of each choice's text: what acc_norm divides by (null for token-id tasks). */
  chars: number[] | null;
  pred: number | null;
  pred_norm: number | null;
  label: number | null;
  /** Cloze examples: every target token was the greedy prediction. */
  greedy?: boolean;
}

export interface MetricResult {
  metric: MetricName;
  value: number;
  /** Null when it cannot be estimated (one example). */
  stderr: number | null;
  n: number;
}

/** numpy.argmax: the first maximum; a NaN wins (numpy returns the first NaN). */
export function argmax(xs: readonly number[]): number {
  let best = 0;
  for (let i = 0; i < xs.length; i++) {
    if (Number.isNaN(xs[i]!)) return i;
    if (xs[i]! > xs[best]!) best = i;
  }
  return best;
}

/** Per-example details, in example order; `scored` is flat over every example's requests in order. */
export function exampleDetails(examples: readonly Example[], scored: readonly Scored[]): ExampleDetail[] {
  let k = 0;
  return examples.map((ex) => {
    const s = ex.requests.map(() => scored[k++]!);
    const lls = s.map((x) => x.logprob);
    const tokens = s.map((x) => x.tokens);
    const texts = ex.choiceTexts;
    const chars = texts ? texts.map(pyLen) : null;
    const bytes = texts ? texts.map(utf8Length) : null;
    if (ex.label === null) {
      return { index: ex.index, loglikelihoods: lls, tokens, bytes: [utf8Length(continuationText(ex))], chars: null, pred: null, pred_norm: null, label: null, greedy: s[0]!.greedy };
    }
    const pred = argmax(lls);
    const predNorm = chars ? argmax(lls.map((l, i) => l / chars[i]!)) : null;
    return { index: ex.index, loglikelihoods: lls, tokens, bytes, chars, pred, pred_norm: predNorm, label: ex.label };
  });
}

function continuationText(ex: Example): string {
  const r = ex.requests[0]!;
  return 'continuation' in r ? r.continuation : '';
}

function meanAndStderr(xs: readonly number[]): { mean: number; stderr: number | null } {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, stderr: null };
  const ss = xs.reduce((a, x) => a + (x - mean) ** 2, 0);
  return { mean, stderr: Math.sqrt(ss / (n - 1)) / Math.sqrt(n) };
}

export function taskMetrics(metrics: readonly MetricName[], details: readonly ExampleDetail[]): MetricResult[] {
  const n = details.length;
  if (n === 0) return [];
  return metrics.map((metric): MetricResult => {
    if (metric === 'perplexity') {
      const { mean, stderr } = meanAndStderr(details.map((d) => d.loglikelihoods[0]!));
      const ppl = Math.exp(-mean);
      return { metric, value: ppl, stderr: stderr === null ? null : ppl * stderr, n };
    }
    const hits = details.map((d) => {
      if (d.label === null) return d.greedy ? 1 : 0;
      return (metric === 'acc_norm' ? d.pred_norm : d.pred) === d.label ? 1 : 0;
    });
    const { mean, stderr } = meanAndStderr(hits);
    return { metric, value: mean, stderr, n };
  });
}
