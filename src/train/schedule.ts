/**
 * Learning-rate schedules. `lrAt(step, cfg)` takes a 0-based optimizer step and returns the lr that step uses.
 *
 * With lr = peak, m = min_lr, W = warmup_steps, T = total_steps:
 *
 *   warmup (every schedule), step < W:   lr * (step + 1) / W
 *     (the first step already moves the weights; step W-1 reaches the peak)
 *
 *   cosine, W <= step:   p = min(1, (step - W) / (T - W))
 *                        m + (lr - m) * (1 + cos(pi * p)) / 2
 *     (lr at step W, m at step T and beyond; the last trained step T-1 is one step short of m)
 *
 *   wsd (warmup-stable-decay), D = round(decay_fraction * T), S = max(W, T - D):
 *     W <= step < S:      lr                                     (stable)
 *     S <= step:          lr + (m - lr) * min(1, (step - S) / (T - S))   (LINEAR decay, reaching m at step T)
 *
 *   constant, W <= step: lr
 *
 * The decay end point at T (not T-1) matches the cosine convention so the two schedules compare directly.
 */

export type ScheduleKind = 'cosine' | 'wsd' | 'constant';

export interface ScheduleConfig {
  schedule: ScheduleKind;
  /** Peak learning rate. */
  lr: number;
  /** Floor reached at total_steps by cosine and wsd; unused by constant. */
  min_lr: number;
  warmup_steps: number;
  total_steps: number;
  /** wsd only: the share of total_steps spent decaying, in (0, 1]. */
  decay_fraction: number;
}

export class ScheduleError extends Error {}

const KINDS: readonly ScheduleKind[] = ['cosine', 'wsd', 'constant'];

/** Throws a ScheduleError naming the bad setting and the fix; returns the config for chaining. */
export function validateSchedule(cfg: ScheduleConfig): ScheduleConfig {
  const bad = (msg: string): never => {
    throw new ScheduleError(`lr schedule: ${msg}`);
  };
  if (!KINDS.includes(cfg.schedule)) bad(`schedule '${cfg.schedule}' is unknown; use one of ${KINDS.join(', ')}`);
  if (!(Number.isFinite(cfg.lr) && cfg.lr > 0)) bad(`lr must be a positive number, got ${cfg.lr}`);
  if (!(Number.isFinite(cfg.min_lr) && cfg.min_lr >= 0)) bad(`min_lr must be >= 0, got ${cfg.min_lr}`);
  if (cfg.schedule !== 'constant' && cfg.min_lr > cfg.lr)
    bad(`min_lr (${cfg.min_lr}) is above lr (${cfg.lr}); the decay would raise the lr. Set min_lr <= lr`);
  if (!(Number.isInteger(cfg.total_steps) && cfg.total_steps > 0))
    bad(`total_steps must be a positive integer, got ${cfg.total_steps}`);
  if (!(Number.isInteger(cfg.warmup_steps) && cfg.warmup_steps >= 0))
    bad(`warmup_steps must be an integer >= 0, got ${cfg.warmup_steps}`);
  if (cfg.warmup_steps > cfg.total_steps)
    bad(`warmup_steps (${cfg.warmup_steps}) exceeds total_steps (${cfg.total_steps}); shorten the warmup`);
  if (cfg.schedule === 'wsd' && !(cfg.decay_fraction > 0 && cfg.decay_fraction <= 1))
    bad(`decay_fraction must be in (0, 1] for wsd, got ${cfg.decay_fraction} (0.1-0.2 is usual)`);
  return cfg;
}

/** First step of the wsd decay phase (S in the header comment). */
export function wsdDecayStart(cfg: ScheduleConfig): number {
  const decaySteps = Math.round(cfg.decay_fraction * cfg.total_steps);
  return Math.max(cfg.warmup_steps, cfg.total_steps - decaySteps);
}

export function lrAt(step: number, cfg: ScheduleConfig): number {
  if (!(Number.isInteger(step) && step >= 0)) throw new ScheduleError(`lrAt: step must be an integer >= 0, got ${step}`);
  const { lr, min_lr: m, warmup_steps: W, total_steps: T } = cfg;
  if (step < W) return (lr * (step + 1)) / W;
  switch (cfg.schedule) {
    case 'constant':
      return lr;
    case 'cosine': {
      if (T <= W) return m;
      const p = Math.min(1, (step - W) / (T - W));
      return m + ((lr - m) * (1 + Math.cos(Math.PI * p))) / 2;
    }
    case 'wsd': {
      const S = wsdDecayStart(cfg);
      if (step < S) return lr;
      if (T <= S) return m;
      const p = Math.min(1, (step - S) / (T - S));
      return lr + (m - lr) * p;
    }
    default:
      throw new ScheduleError(`unknown schedule '${String((cfg as { schedule: unknown }).schedule)}'`);
  }
}
