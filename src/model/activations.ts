/**
 * Explicit activation memory: every tensor a training step saves or uses as scratch, laid out in two arenas sized
 * from (batch, seq, config) and allocated once per shape. Its size is what the planner's estimate checks.
 *
 * Which arena holds a tensor (the one place this is decided; `plans.stream` / `plans.act` below):
 * - stream (always f32): the residual stream (block input, mid, post-norm sums, blocksOut), its gradients dStream
 *   and dTmp, norm statistics, attention lse, QK-norm rstd, RoPE cos/sin.
 * - act (the backend's activationDType: bf16 on the CUDA engine in bf16 mode, as autocast stores them): norm
 *   outputs that feed GEMMs (attnIn, mlpIn, finalNormOut), qkv, qk, att, mlp.up, mlp.act and the backward scratch
 *   dQkv, dQk, dAtt, dUp, dAct.
 */
import { DTYPE_BYTES, type Backend, type DeviceBuffer, type Ptr } from '../engine/backend.js';
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

/** Bump allocator over one buffer: first plan the sizes, then hand out views. */
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

/** The two arenas' plans (activations.ts's header says which tensor goes where); one Plan twice = all in one. */
export interface ArenaPlans {
  stream: Plan;
  act: Plan;
}

function planStats(plan: Plan, rows: number): NormStats {
  const s = {} as NormStats;
  plan.take(rows, (p) => (s.mean = p));
  plan.take(rows, (p) => (s.rstd = p));
  return s;
}

/** A block's stream tensors for `rows` rows, laid out for the config's norm position, with `extra`'s fields added. */
export function planBlockStream<E extends object>(plans: ArenaPlans, cfg: ModelConfig, rows: number, extra: E): BlockStream & E {
  const D = cfg.hidden_size;
  const F = cfg.ffn_hidden;
  const upW = cfg.ffn === 'swiglu' ? 2 * F : F;
  const plan = plans.stream;
  const rowsD = (set: (p: Ptr) => void) => plan.take(rows * D, set);
  const actD = (set: (p: Ptr) => void) => plans.act.take(rows * D, set);
  const mlp = {} as MlpSaved;
  let s: BlockStream & E;
  if (cfg.norm_position === 'pre') {
    const pre = { ...extra, position: 'pre', mlp } as PreNormStream & E;
    rowsD((p) => (pre.input = p));
    actD((p) => (pre.attnIn = p));
    pre.norm1Stats = planStats(plan, rows);
    rowsD((p) => (pre.mid = p));
    actD((p) => (pre.mlpIn = p));
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
  plans.act.take(rows * upW, (p) => (mlp.up = p));
  plans.act.take(rows * F, (p) => (mlp.act = p));
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
  const plans: ArenaPlans = { stream: new Plan(), act: new Plan() };
  const { stream: plan, act } = plans;
  const acts = { batch, seq, blocks: [] as BlockSaved[] } as unknown as Activations;
  for (let l = 0; l < cfg.n_layer; l++) {
    const attn = { qk: null, qkRstd: null } as AttentionSaved;
    act.take(N * (Q + 2 * KV), (p) => (attn.qkv = p));
    if (prologue) {
      act.take(N * (Q + KV), (p) => (attn.qk = p));
      plan.take(N * (H + K), (p) => (attn.qkRstd = p));
    }
    act.take(N * Q, (p) => (attn.att = p));
    plan.take(batch * H * seq, (p) => (attn.lse = p));
    acts.blocks.push(planBlockStream(plans, cfg, N, { attn }));
  }
  plan.take(N * D, (p) => (acts.blocksOut = p));
  act.take(N * D, (p) => (acts.finalNormOut = p));
  acts.finalNormStats = planStats(plan, N);
  plan.take(N * D, (p) => (acts.dStream = p));
  const scratch = { attn: { dQk: null }, mlp: {} } as unknown as BlockScratch;
  plan.take(N * D, (p) => (scratch.dTmp = p));
  act.take(N * (Q + 2 * KV), (p) => (scratch.attn.dQkv = p));
  if (prologue) act.take(N * (Q + KV), (p) => (scratch.attn.dQk = p));
  act.take(N * Q, (p) => (scratch.attn.dAtt = p));
  act.take(N * upW, (p) => (scratch.mlp.dUp = p));
  act.take(N * F, (p) => (scratch.mlp.dAct = p));
  acts.scratch = scratch;
  acts.cos = null;
  acts.sin = null;
  if (cfg.positions === 'rope') {
    plan.take(seq * (hd / 2), (p) => (acts.cos = p));
    plan.take(seq * (hd / 2), (p) => (acts.sin = p));
  }
  return { plans, acts };
}

export function allocateActivations(be: Backend, cfg: ModelConfig, batch: number, seq: number): Activations {
  const { plans, acts } = planActivations(cfg, batch, seq);
  const N = batch * seq;
  const f32 = be.alloc('f32', plans.stream.size);
  plans.stream.realise(f32);
  const act = be.alloc(be.activationDType, plans.act.size);
  plans.act.realise(act);
  const i32 = be.alloc('i32', intCount(N));
  acts.ids = { buf: i32, offset: 0 };
  acts.targets = { buf: i32, offset: N };
  acts.positions = { buf: i32, offset: 2 * N };
  acts.cuSeqlens = { buf: i32, offset: 3 * N };
  acts.scalars = be.alloc('f64', 2);
  acts.buffers = [f32, act, i32, acts.scalars];
  acts.bytes = arenaBytes(plans, be.activationDType, N);
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

/** The f32 stream arena, the activation arena in its dtype, the i32 rows and two f64 scalars. */
function arenaBytes(plans: ArenaPlans, actDType: 'f32' | 'bf16', N: number): number {
  return plans.stream.size * 4 + plans.act.size * DTYPE_BYTES[actDType] + intCount(N) * 4 + 2 * 8;
}

/** Bytes `allocateActivations` takes for this shape with activations stored in `actDType` (f32 on the CPU). */
export function activationArenaBytes(cfg: ModelConfig, batch: number, seq: number, actDType: 'f32' | 'bf16' = 'f32'): number {
  return arenaBytes(planActivations(cfg, batch, seq).plans, actDType, batch * seq);
}

/** Elements of the two arenas (stream f32, activations in the backend's dtype) for this shape. */
export function activationArenaElements(cfg: ModelConfig, batch: number, seq: number): { stream: number; act: number } {
  const { plans } = planActivations(cfg, batch, seq);
  return { stream: plans.stream.size, act: plans.act.size };
}
