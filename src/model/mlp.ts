/** The feed-forward block: SwiGLU (down(silu(gate x) * up x)) or a plain MLP (down(act(up x))). */
import type { Backend, Ptr } from '../engine/backend.js';
import type { Activation, FfnKind } from '../config/model.js';
import { Linear } from './linear.js';

/** Saved activations of one MLP call. */
export interface MlpSaved {
  /** swiglu: [N, 2F] gate | up; mlp: [N, F] pre-activation. */
  up: Ptr;
  /** [N, F] input of the down projection. */
  act: Ptr;
}

export interface MlpScratch {
  dUp: Ptr;
  dAct: Ptr;
}

export class Mlp {
  constructor(
    private readonly be: Backend,
    readonly kind: FfnKind,
    readonly activation: Activation,
    readonly up: Linear,
    readonly down: Linear,
    readonly hidden: number,
  ) {}

  /** y (=) mlp(x). */
  forward(y: Ptr, x: Ptr, saved: MlpSaved, rows: number): void {
    this.recompute(x, saved, rows);
    this.down.forward(y, saved.act, rows);
  }

  /** Writes what `backward` reads besides x (the up-projection output and the activation): the forward without down. */
  recompute(x: Ptr, saved: MlpSaved, rows: number): void {
    this.up.forward(saved.up, x, rows);
    if (this.kind === 'swiglu') this.be.swigluForward(saved.act, saved.up, rows, this.hidden);
    else this.be.activationForward(saved.act, saved.up, rows * this.hidden, this.activation);
  }

  /** dx (= or +=) from dy, accumulating the weight gradients. */
  backward(dx: Ptr, dy: Ptr, x: Ptr, saved: MlpSaved, s: MlpScratch, rows: number, accumulateDx: boolean): void {
    this.down.backward(s.dAct, dy, saved.act, rows);
    if (this.kind === 'swiglu') this.be.swigluBackward(s.dUp, s.dAct, saved.up, rows, this.hidden);
    else this.be.activationBackward(s.dUp, s.dAct, saved.up, rows * this.hidden, this.activation);
    this.up.backward(dx, s.dUp, x, rows, accumulateDx);
  }
}
