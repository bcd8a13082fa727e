/**
 * Worker thread of `prepare`: encodes batches of documents with the tokenizer's added tokens disabled (a
 * literal `<|endoftext|>` in a document is text), appends the separator after each document and sends back
 * one flat Uint32Array per batch (transferred, not copied).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { plainTokenizerFromJson, splitAtPretokenBoundaries } from './tokenizer.js';

export interface EncodeWorkerInit {
  /** tokenizer.json text with the added tokens removed (parsed once by the main thread). */
  plainJson: string;
  eotId: number;
  /** Documents longer than this many UTF-16 units are encoded in pieces cut at pre-token boundaries. */
  pieceChars: number;
}

export interface EncodeRequest {
  id: number;
  texts: string[];
}

export type EncodeReply =
  | { id: number; ok: true; ids: Uint32Array; lens: Uint32Array }
  | { id: number; ok: false; error: string };

const init = workerData as EncodeWorkerInit;
const plain = plainTokenizerFromJson(init.plainJson);
const eot = init.eotId;

async function encode(texts: string[]): Promise<{ ids: Uint32Array; lens: Uint32Array }> {
  const pieces: string[] = [];
  const pieceCount: number[] = [];
  for (const t of texts) {
    const p = splitAtPretokenBoundaries(t, init.pieceChars);
    pieces.push(...p);
    pieceCount.push(p.length);
  }
  const encs = await plain.encodeBatch(pieces);
  const idLists = encs.map((e) => e.getIds());
  let total = texts.length;
  for (const l of idLists) total += l.length;
  const ids = new Uint32Array(total);
  const lens = new Uint32Array(texts.length);
  let o = 0;
  let k = 0;
  for (let d = 0; d < texts.length; d++) {
    const start = o;
    for (let j = 0; j < pieceCount[d]!; j++, k++) {
      ids.set(idLists[k]!, o);
      o += idLists[k]!.length;
    }
    ids[o++] = eot;
    lens[d] = o - start;
  }
  return { ids, lens };
}

parentPort!.on('message', (req: EncodeRequest) => {
  encode(req.texts).then(
    ({ ids, lens }) => {
      const reply: EncodeReply = { id: req.id, ok: true, ids, lens };
      parentPort!.postMessage(reply, [ids.buffer as ArrayBuffer, lens.buffer as ArrayBuffer]);
    },
    (e: unknown) => {
      const reply: EncodeReply = { id: req.id, ok: false, error: (e as Error).message ?? String(e) };
      parentPort!.postMessage(reply);
    },
  );
});
parentPort!.postMessage({ ready: true });
