/**
 * Explicit activation memory: every tensor a training step saves or uses as scratch, laid out in one f32 arena
 * sized from (batch, seq, config) and allocated once per shape. Its size is what the planner's estimate checks.
 */
import type { Backend, DeviceBuffer, Ptr } from '../engine/backend.js';
import type { ModelConfig } from '../config/model.js';
import type { AttentionSaved, AttentionScratch } from './attention.js';
import type { MlpSaved, MlpScratch } from './mlp.js';
import type { NormStats } from './norm.js';

export interface LayerActivations {
  /** Layer input (the residual stream). */
  x: Ptr;
  /** Pre-norm: norm1(x). Post-norm: x + attn(x), the input of norm1. */
  a: Ptr;
  stats1: NormStats;
  attn: AttentionSaved;
  /** Residual stream after the attention half. */
  r: Ptr;
  /** Pre-norm: norm2(r). Post-norm: r + mlp(r), the input of norm2. */
  b: Ptr;
  stats2: NormStats;
  mlp: MlpSaved;
}

export interface Activations {
  batch: number;
  seq: number;
  layers: LayerActivations[];
  /** Output of the last layer. */
  xOut: Ptr;
  /** Final norm output (pre-norm models), the head's input. */
  hFinal: Ptr;
  statsFinal: NormStats;
  /** Backward scratch, shared by all layers. */
  dx: Ptr;
  dTmp: Ptr;
  attnScratch: AttentionScratch;
  mlpScratch: MlpScratch;
  /** i32: token ids [N], targets [N], positions [N]. */
  ids: Ptr;
  targets: Ptr;
  positions: Ptr;
  /** f64 scalars: [0] loss sum, [1] sum of squared gradients. */
  scalars: DeviceBuffer;
  /** RoPE tables [seq, hd/2] (inside the f32 arena). */
  cos: Ptr | null;
  sin: Ptr | null;
  buffers: DeviceBuffer[];
  bytes: number;
}

/** Bump allocator over one buffer: first plan the sizes, then hand out views. */
class Plan {
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
  const prologue = cfg.qk_norm || cfg.positions === 'rope';
  const stats = (plan: Plan): NormStats => {
    const s = {} as NormStats;
    plan.take(N, (p) => (s.mean = p));
    plan.take(N, (p) => (s.rstd = p));
    return s;
  };
  const plan = new Plan();
  const acts = { batch, seq, layers: [] as LayerActivations[] } as unknown as Activations;
  for (let l = 0; l < cfg.n_layer; l++) {
    const L = { attn: {}, mlp: {} } as LayerActivations;
    plan.take(N * D, (p) => (L.x = p));
    plan.take(N * D, (p) => (L.a = p));
    L.stats1 = stats(plan);
    plan.take(N * (Q + 2 * KV), (p) => (L.attn.qkv = p));
    L.attn.qk = null;
    L.attn.qkRstd = null;
    if (prologue) {
      plan.take(N * (Q + KV), (p) => (L.attn.qk = p));
      plan.take(N * (H + K), (p) => (L.attn.qkRstd = p));
    }
    plan.take(N * Q, (p) => (L.attn.att = p));
    plan.take(batch * H * seq, (p) => (L.attn.lse = p));
    plan.take(N * D, (p) => (L.r = p));
    plan.take(N * D, (p) => (L.b = p));
    L.stats2 = stats(plan);
    plan.take(N * upW, (p) => (L.mlp.up = p));
    plan.take(N * F, (p) => (L.mlp.act = p));
    acts.layers.push(L);
  }
  plan.take(N * D, (p) => (acts.xOut = p));
  plan.take(N * D, (p) => (acts.hFinal = p));
  acts.statsFinal = stats(plan);
  plan.take(N * D, (p) => (acts.dx = p));
  plan.take(N * D, (p) => (acts.dTmp = p));
  acts.attnScratch = { dQk: null } as AttentionScratch;
  plan.take(N * (Q + 2 * KV), (p) => (acts.attnScratch.dQkv = p));
  if (prologue) plan.take(N * (Q + KV), (p) => (acts.attnScratch.dQk = p));
  plan.take(N * Q, (p) => (acts.attnScratch.dAtt = p));
  acts.mlpScratch = {} as MlpScratch;
  plan.take(N * upW, (p) => (acts.mlpScratch.dUp = p));
  plan.take(N * F, (p) => (acts.mlpScratch.dAct = p));
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
  const i32 = be.alloc('i32', 3 * N);
  acts.ids = { buf: i32, offset: 0 };
  acts.targets = { buf: i32, offset: N };
  acts.positions = { buf: i32, offset: 2 * N };
  acts.scalars = be.alloc('f64', 2);
  acts.buffers = [f32, i32, acts.scalars];
  acts.bytes = plan.size * 4 + 3 * N * 4 + 16;
  return acts;
}

export function freeActivations(be: Backend, acts: Activations): void {
  for (const b of acts.buffers) be.free(b);
  acts.buffers = [];
}

/** Bytes `allocateActivations` takes for this shape (the f32 arena, three i32 rows of N, two f64 scalars). */
export function activationArenaBytes(cfg: ModelConfig, batch: number, seq: number): number {
  return planActivations(cfg, batch, seq).plan.size * 4 + 3 * batch * seq * 4 + 16;
}
