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
/** Characters given to one call of the tokenizer library (a batch of pieces). */
const ENCODE_CALL_CHARS = 1 << 20;
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
  // At most about ENCODE_CALL_CHARS characters per library call: the library keeps per-token strings and offsets
  // for every piece of a call, so one call over all the pieces of a 100 MB document would hold gigabytes.
  const idLists: Uint32Array[] = [];
  for (let a = 0; a < pieces.length; ) {
    let b = a;
    let chars = 0;
    while (b < pieces.length && (b === a || chars + pieces[b]!.length <= ENCODE_CALL_CHARS)) chars += pieces[b++]!.length;
    for (const e of await plain.encodeBatch(pieces.slice(a, b))) idLists.push(Uint32Array.from(e.getIds()));
    a = b;
  }
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
