/**
 * Text requests to token requests, split the way lm-evaluation-harness splits them for a causal model:
 * whitespace at the end of the context moves to the start of the continuation, the whole string is encoded,
 * and the continuation's tokens are the whole encoding minus the context's encoding (so a token that would
 * straddle the boundary is scored as the model would see it). An empty context becomes the end-of-text token.
 */
import { EvalDataError } from './rows.js';
import { pyRstrip } from './python-text.js';
import type { Example } from './task.js';

export interface TokenRequest {
  context: number[];
  continuation: number[];
}

/** What scoring needs of a tokenizer (the Qwen3Tokenizer of src/data/tokenizer.ts fits). */
export interface TextTokenizer {
  encodeBatch(texts: string[]): Promise<number[][]>;
  /** The end-of-text id, used as the context of a request whose context is empty; -1 when there is none. */
  readonly eotId: number;
}

interface Pair {
  context: string;
  continuation: string;
}

/** The harness's move of trailing context whitespace into the continuation. */
export function splitPair(context: string, continuation: string): Pair {
  const kept = pyRstrip(context);
  return { context: kept, continuation: context.slice(kept.length) + continuation };
}

/** Token requests per example, in example order. Text is encoded in batches, each distinct string once. */
export async function tokenizeExamples(examples: readonly Example[], tok: TextTokenizer | null): Promise<TokenRequest[][]> {
  const texts = new Set<string>();
  const pairs = examples.map((ex) =>
    ex.requests.map((r) => {
      if ('contextIds' in r) return null;
      const p = r.context === '' ? { context: '', continuation: r.continuation } : splitPair(r.context, r.continuation);
      if (p.context !== '') texts.add(p.context);
      texts.add(p.context + p.continuation);
      return p;
    }),
  );
  const ids = new Map<string, number[]>();
  if (texts.size > 0) {
    if (!tok) throw new EvalDataError(`${examples[0]!.where}: this task is text and the model has no tokenizer; pass --tokenizer, or use --task mc-tokens with token ids`);
    const list = [...texts];
    const encoded = await tok.encodeBatch(list);
    list.forEach((t, i) => ids.set(t, encoded[i]!));
  }
  return examples.map((ex, e) =>
    ex.requests.map((r, k): TokenRequest => {
      if ('contextIds' in r) return { context: [...r.contextIds], continuation: [...r.continuationIds] };
      const p = pairs[e]![k]!;
      const whole = ids.get(p.context + p.continuation)!;
      let out: TokenRequest;
      if (p.context === '') {
        // The harness conditions on the prefix token, unless the continuation already starts with it.
        if (tok!.eotId < 0) throw new EvalDataError(`${ex.where}: the context is empty and the tokenizer has no end-of-text token to stand for it`);
        out = whole[0] === tok!.eotId ? { context: whole.slice(0, 1), continuation: whole.slice(1) } : { context: [tok!.eotId], continuation: whole };
      } else {
        const ctx = ids.get(p.context)!;
        out = { context: ctx, continuation: whole.slice(ctx.length) };
      }
      if (out.continuation.length === 0)
        throw new EvalDataError(`${ex.where}: request ${k} has no continuation tokens (${JSON.stringify(p.continuation)} merges into the context)`);
      return out;
    }),
  );
}
