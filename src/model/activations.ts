/**
 * Explicit activation memory: every tensor a training step saves or uses as scratch, laid out in two arenas sized
 * from (batch, seq, config, recompute mode) and allocated once per shape. Its size is what the planner's estimate
 * checks.
 *
 * Which arena holds a tensor (the one place this is decided: `ACT_TENSORS` and `plans.stream` / `plans.act` below):
 * - stream (always f32): the residual stream (block input, mid, post-norm sums, blocksOut), its gradients dStream
 *   and dTmp, norm statistics, attention lse, QK-norm rstd, RoPE cos/sin.
 * - act (the backend's activationDType: bf16 on the CUDA engine in bf16 mode, as autocast stores them): norm
 *   outputs that feed GEMMs (attnIn, mlpIn, finalNormOut), qkv, qk, att, mlp.up, mlp.act and the backward scratch
 *   dQkv, dQk, dAtt, dUp, dAct.
 * With recomputation, a block's tensors are either kept per layer or live once, shared by all layers, and are
 * rewritten in the backward (`keptPerLayer` is the one place that decides which).
 */
import { DTYPE_BYTES, type Backend, type DeviceBuffer, type Ptr } from '../engine/backend.js';
import type { ModelConfig } from '../config/model.js';
import type { RecomputeMode } from '../config/train.js';
import { Attention, type AttentionSaved } from './attention.js';
import type { BlockSaved, BlockScratch, BlockStream, PostNormStream, PreNormStream } from './block.js';
import type { MlpSaved } from './mlp.js';
import type { NormStats } from './norm.js';

export interface Activations {
  batch: number;
  seq: number;
  recompute: RecomputeMode;
  /**
   * What each block saves, in order. blocks[0].input is the embedding output. Tensors that `keptPerLayer` does not
   * keep are the same views in every block (the last block's forward wrote them; earlier blocks rewrite them).
   */
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
  private readonly shared = new Map<string, { n: number; sets: ((p: Ptr) => void)[] }>();
  take(n: number, set: (p: Ptr) => void): void {
    // Keep every view 16-element aligned (64 bytes) for vector loads.
    this.wants.push({ n, set });
    this.used += Math.ceil(n / 16) * 16;
  }
  /** One view per `key`, taken at its first request; every later request with that key gets the same view. */
  takeShared(key: string, n: number, set: (p: Ptr) => void): void {
    let slot = this.shared.get(key);
    if (!slot) {
      const fresh = { n, sets: [] as ((p: Ptr) => void)[] };
      this.take(n, (p) => fresh.sets.forEach((f) => f(p)));
      this.shared.set(key, fresh);
      slot = fresh;
    }
    if (slot.n !== n) throw new Error(`internal: shared activation '${key}' requested with ${n} and ${slot.n} elements`);
    slot.sets.push(set);
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

/** The two arenas' plans (the header says which tensor goes where); one Plan twice = all in one. */
export interface ArenaPlans {
  stream: Plan;
  act: Plan;
}

/** The tensors a block's forward saves for its backward, by name. */
export type SavedTensor =
  | 'input' | 'attnIn' | 'attnSum' | 'mid' | 'mlpSum' | 'mlpIn' | 'norm1Stats' | 'norm2Stats'
  | 'qkv' | 'qk' | 'qkRstd' | 'att' | 'lse' | 'mlp.up' | 'mlp.act';

/**
 * Whether every layer keeps its own copy of `t` under `mode`; if not, all layers share one copy and the backward
 * recomputes it (Block.recompute): 'mlp' drops the MLP's up-projection output and activation, 'block' keeps only
 * the residual stream entering the block.
 */
export function keptPerLayer(mode: RecomputeMode, t: SavedTensor): boolean {
  if (mode === 'none') return true;
  if (mode === 'mlp') return t !== 'mlp.up' && t !== 'mlp.act';
  return t === 'input';
}

/** Takes one saved tensor's elements (`part` names a piece of a tensor with several): its own view, or a shared one. */
export type TakeSaved = (t: SavedTensor, n: number, set: (p: Ptr) => void, part?: string) => void;

/** The saved tensors stored in the activation dtype; the others are f32 stream tensors. */
const ACT_TENSORS: ReadonlySet<SavedTensor> = new Set(['attnIn', 'mlpIn', 'qkv', 'qk', 'att', 'mlp.up', 'mlp.act']);

/** Each tensor in its arena: per-layer views for what `mode` keeps, shared views for the rest. */
export function savedTaker(plans: ArenaPlans, mode: RecomputeMode): TakeSaved {
  return (t, n, set, part = '') => {
    const plan = ACT_TENSORS.has(t) ? plans.act : plans.stream;
    if (keptPerLayer(mode, t)) plan.take(n, set);
    else plan.takeShared(t + part, n, set);
  };
}

/** A norm's statistics: `take(n, set, part)` hands out each of its two vectors. */
function planStats(take: (n: number, set: (p: Ptr) => void, part: string) => void, rows: number): NormStats {
  const s = {} as NormStats;
  take(rows, (p) => (s.mean = p), '.mean');
  take(rows, (p) => (s.rstd = p), '.rstd');
  return s;
}

/**
 * A block's stream tensors for `rows` rows, laid out for the config's norm position, with `extra`'s fields added.
 * `take` decides per tensor between a view of its own and a shared one (default: all its own).
 */
export function planBlockStream<E extends object>(
  plans: ArenaPlans, cfg: ModelConfig, rows: number, extra: E, take: TakeSaved = savedTaker(plans, 'none'),
): BlockStream & E {
  const D = cfg.hidden_size;
  const F = cfg.ffn_hidden;
  const upW = cfg.ffn === 'swiglu' ? 2 * F : F;
  const rowsD = (t: SavedTensor, set: (p: Ptr) => void) => take(t, rows * D, set);
  const mlp = {} as MlpSaved;
  let s: BlockStream & E;
  if (cfg.norm_position === 'pre') {
    const pre = { ...extra, position: 'pre', mlp } as PreNormStream & E;
    rowsD('input', (p) => (pre.input = p));
    rowsD('attnIn', (p) => (pre.attnIn = p));
    pre.norm1Stats = planStats((n, set, part) => take('norm1Stats', n, set, part), rows);
    rowsD('mid', (p) => (pre.mid = p));
    rowsD('mlpIn', (p) => (pre.mlpIn = p));
    pre.norm2Stats = planStats((n, set, part) => take('norm2Stats', n, set, part), rows);
    s = pre;
  } else {
    const post = { ...extra, position: 'post', mlp } as PostNormStream & E;
    rowsD('input', (p) => (post.input = p));
    rowsD('attnSum', (p) => (post.attnSum = p));
    post.norm1Stats = planStats((n, set, part) => take('norm1Stats', n, set, part), rows);
    rowsD('mid', (p) => (post.mid = p));
    rowsD('mlpSum', (p) => (post.mlpSum = p));
    post.norm2Stats = planStats((n, set, part) => take('norm2Stats', n, set, part), rows);
    s = post;
  }
  take('mlp.up', rows * upW, (p) => (mlp.up = p));
  take('mlp.act', rows * F, (p) => (mlp.act = p));
  return s;
}

function planActivations(cfg: ModelConfig, batch: number, seq: number, recompute: RecomputeMode) {
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
  const acts = { batch, seq, recompute, blocks: [] as BlockSaved[] } as unknown as Activations;
  const take = savedTaker(plans, recompute);
  for (let l = 0; l < cfg.n_layer; l++) {
    const attn = { qk: null, qkRstd: null } as AttentionSaved;
    take('qkv', N * (Q + 2 * KV), (p) => (attn.qkv = p));
    if (prologue) {
      take('qk', N * (Q + KV), (p) => (attn.qk = p));
      take('qkRstd', N * (H + K), (p) => (attn.qkRstd = p));
    }
    take('att', N * Q, (p) => (attn.att = p));
    take('lse', batch * H * seq, (p) => (attn.lse = p));
    acts.blocks.push(planBlockStream(plans, cfg, N, { attn }, take));
  }
  plan.take(N * D, (p) => (acts.blocksOut = p));
  act.take(N * D, (p) => (acts.finalNormOut = p));
  acts.finalNormStats = planStats((n, set) => plan.take(n, set), N);
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

export function allocateActivations(
  be: Backend, cfg: ModelConfig, batch: number, seq: number, recompute: RecomputeMode = 'none',
): Activations {
  const { plans, acts } = planActivations(cfg, batch, seq, recompute);
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

/**
 * Bytes `allocateActivations` takes for this shape with activations stored in `actDType` (f32 on the CPU) under
 * this recompute mode.
 */
export function activationArenaBytes(
  cfg: ModelConfig, batch: number, seq: number, actDType: 'f32' | 'bf16' = 'f32', recompute: RecomputeMode = 'none',
): number {
  return arenaBytes(planActivations(cfg, batch, seq, recompute).plans, actDType, batch * seq);
}

/** Elements of the two arenas (stream f32, activations in the backend's dtype) for this shape. */
export function activationArenaElements(
  cfg: ModelConfig, batch: number, seq: number, recompute: RecomputeMode = 'none',
): { stream: number; act: number } {
  const { plans } = planActivations(cfg, batch, seq, recompute);
  return { stream: plans.stream.size, act: plans.act.size };
}
