/** The sample printed at the end of `lmforge train`: a short continuation of a prompt, streamed. */
import type { Trainer } from './trainer.js';
import { KvGenerator } from '../model/generate.js';
import { loadTokenizer } from '../data/tokenizer.js';

export async function sampleFromTrainer(trainer: Trainer, prompt: string, tokens: number, seed: number): Promise<void> {
  const tok = loadTokenizer();
  const ids = await tok.encode(prompt);
  const maxLen = Math.min(trainer.model.cfg.context_length, ids.length + tokens);
  const gen = new KvGenerator(trainer.model, maxLen);
  const dec = tok.incrementalDecoder();
  process.stdout.write(`\nsample (temperature 0.8, top-k 50):\n${prompt}`);
  try {
    for (const id of gen.generate(ids, { maxNewTokens: maxLen - ids.length, temperature: 0.8, topK: 50, topP: 1, seed })) {
      process.stdout.write(dec.push(id));
    }
    process.stdout.write(dec.flush() + '\n');
  } finally {
    gen.dispose();
  }
}
