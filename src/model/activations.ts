/**
 * Explicit activation memory: every tensor a training step saves or uses as scratch, laid out in one f32 arena
 * sized from (batch, seq, config) and allocated once per shape. Its size is what the planner's estimate checks.
 */
import type { Backend, DeviceBuffer, Ptr } from '../engine/backend.js';
import type { ModelConfig } from '../config/model.js';
import { Attention, type AttentionSaved } from './attention.js';
import type { BlockSaved, BlockScratch, BlockStream, PostNormStream, PreNormStream } from './block.js';
import type { MlpSaved } from './mlp.js';
import type { NormStats } from './norm.js';

export interface Activations {
  batch: number;
  seq: number;
  /** What each block saves, in order. blocks[0].input is the embedding output. */
  blocks: BlockSaved[];
  /** [N, D] the last block's output, input of the final norm (or of the head). */
  blocksOut: Ptr;
  /** [N, D] final norm output (pre-norm models), the head's input. */
  finalNormOut: Ptr;
  finalNormStats: NormStats;
  /** [N, D] the residual-stream gradient carried down through the blocks (backward). */
  dStream: Ptr;
  /** Backward scratch shared by all blocks; its dTmp first receives dL/d(head input) from the fused head. */
  scratch: BlockScratch;
  /** i32: token ids [N], targets [N], positions [N], document starts (cumulative sequence lengths) [N + 1]. */
  ids: Ptr;
  targets: Ptr;
  positions: Ptr;
  cuSeqlens: Ptr;
  /** f64 scalars: [0] loss sum, [1] sum of squared gradients. */
  scalars: DeviceBuffer;
  /** RoPE tables [seq, hd/2] (inside the f32 arena). */
  cos: Ptr | null;
  sin: Ptr | null;
  buffers: DeviceBuffer[];
  bytes: number;
}

/** Bump allocator over one f32 buffer: first plan the sizes, then hand out views. */
export class Plan {
  private used = 0;
  private readonly wants: { n: number; set: (p: Ptr) => void }[] = [];
  take(n: number, set: (p: Ptr) => void): void {
    // Keep every view 16-element aligned (64 bytes) for vector loads.
    this.wants.push({ n, set });
    this.used += Math.ceil(n / 16) * 16;
  }
  get size(): number {
    return this.used;
  }
  realise(buf: DeviceBuffer): void {
    let off = 0;
    for (const w of this.wants) {
      w.set({ buf, offset: off });
      off += Math.ceil(w.n / 16) * 16;
    }
  }
}

function planStats(plan: Plan, rows: number): NormStats {
  const s = {} as NormStats;
  plan.take(rows, (p) => (s.mean = p));
  plan.take(rows, (p) => (s.rstd = p));
  return s;
}

/** A block's stream tensors for `rows` rows, laid out for the config's norm position, with `extra`'s fields added. */
export function planBlockStream<E extends object>(plan: Plan, cfg: ModelConfig, rows: number, extra: E): BlockStream & E {
  const D = cfg.hidden_size;
  const F = cfg.ffn_hidden;
  const upW = cfg.ffn === 'swiglu' ? 2 * F : F;
  const rowsD = (set: (p: Ptr) => void) => plan.take(rows * D, set);
  const mlp = {} as MlpSaved;
  let s: BlockStream & E;
  if (cfg.norm_position === 'pre') {
    const pre = { ...extra, position: 'pre', mlp } as PreNormStream & E;
    rowsD((p) => (pre.input = p));
    rowsD((p) => (pre.attnIn = p));
    pre.norm1Stats = planStats(plan, rows);
    rowsD((p) => (pre.mid = p));
    rowsD((p) => (pre.mlpIn = p));
    pre.norm2Stats = planStats(plan, rows);
    s = pre;
  } else {
    const post = { ...extra, position: 'post', mlp } as PostNormStream & E;
    rowsD((p) => (post.input = p));
    rowsD((p) => (post.attnSum = p));
    post.norm1Stats = planStats(plan, rows);
    rowsD((p) => (post.mid = p));
    rowsD((p) => (post.mlpSum = p));
    post.norm2Stats = planStats(plan, rows);
    s = post;
  }
  plan.take(rows * upW, (p) => (mlp.up = p));
  plan.take(rows * F, (p) => (mlp.act = p));
  return s;
}

function planActivations(cfg: ModelConfig, batch: number, seq: number) {
  const N = batch * seq;
  const D = cfg.hidden_size;
  const H = cfg.n_head;
  const K = cfg.n_kv_head;
  const hd = cfg.head_dim;
  const Q = H * hd;
  const KV = K * hd;
  const F = cfg.ffn_hidden;
  const upW = cfg.ffn === 'swiglu' ? 2 * F : F;
  const prologue = Attention.needsPrologue(cfg.qk_norm, cfg.positions === 'rope');
  const plan = new Plan();
  const acts = { batch, seq, blocks: [] as BlockSaved[] } as unknown as Activations;
  for (let l = 0; l < cfg.n_layer; l++) {
    const attn = { qk: null, qkRstd: null } as AttentionSaved;
    plan.take(N * (Q + 2 * KV), (p) => (attn.qkv = p));
    if (prologue) {
      plan.take(N * (Q + KV), (p) => (attn.qk = p));
      plan.take(N * (H + K), (p) => (attn.qkRstd = p));
    }
    plan.take(N * Q, (p) => (attn.att = p));
    plan.take(batch * H * seq, (p) => (attn.lse = p));
    acts.blocks.push(planBlockStream(plan, cfg, N, { attn }));
  }
  plan.take(N * D, (p) => (acts.blocksOut = p));
  plan.take(N * D, (p) => (acts.finalNormOut = p));
  acts.finalNormStats = planStats(plan, N);
  plan.take(N * D, (p) => (acts.dStream = p));
  const scratch = { attn: { dQk: null }, mlp: {} } as unknown as BlockScratch;
  plan.take(N * D, (p) => (scratch.dTmp = p));
  plan.take(N * (Q + 2 * KV), (p) => (scratch.attn.dQkv = p));
  if (prologue) plan.take(N * (Q + KV), (p) => (scratch.attn.dQk = p));
  plan.take(N * Q, (p) => (scratch.attn.dAtt = p));
  plan.take(N * upW, (p) => (scratch.mlp.dUp = p));
  plan.take(N * F, (p) => (scratch.mlp.dAct = p));
  acts.scratch = scratch;
  acts.cos = null;
  acts.sin = null;
  if (cfg.positions === 'rope') {
    plan.take(seq * (hd / 2), (p) => (acts.cos = p));
    plan.take(seq * (hd / 2), (p) => (acts.sin = p));
  }
  return { plan, acts };
}

export function allocateActivations(be: Backend, cfg: ModelConfig, batch: number, seq: number): Activations {
  const { plan, acts } = planActivations(cfg, batch, seq);
  const N = batch * seq;
  const f32 = be.alloc('f32', plan.size);
  plan.realise(f32);
  const i32 = be.alloc('i32', intCount(N));
  acts.ids = { buf: i32, offset: 0 };
  acts.targets = { buf: i32, offset: N };
  acts.positions = { buf: i32, offset: 2 * N };
  acts.cuSeqlens = { buf: i32, offset: 3 * N };
  acts.scalars = be.alloc('f64', 2);
  acts.buffers = [f32, i32, acts.scalars];
  acts.bytes = arenaBytes(plan.size, N);
  return acts;
}

export function freeActivations(be: Backend, acts: Activations): void {
  for (const b of acts.buffers) be.free(b);
  acts.buffers = [];
}

/** i32 elements of the arena for N tokens: ids, targets, positions [N each] and cumulative sequence lengths [N + 1]. */
function intCount(N: number): number {
  return 4 * N + 1;
}

/** The f32 arena, the i32 rows and two f64 scalars. */
function arenaBytes(f32Elements: number, N: number): number {
  return f32Elements * 4 + intCount(N) * 4 + 2 * 8;
}

/** Bytes `allocateActivations` takes for this shape. */
export function activationArenaBytes(cfg: ModelConfig, batch: number, seq: number): number {
  return arenaBytes(planActivations(cfg, batch, seq).plan.size, batch * seq);
}
