/**
 * Training health: is the loss behaving? The loop reports every step here; each checkpoint stores the small
 * record below in its state.json; and when a run stops for NaN/Inf this names the last checkpoint saved before
 * the trouble began, which may be several checkpoints back: weights can diverge while staying finite
 * (|w| ~ 1e11, a saturated softmax, gradient norm 0) for many steps before anything overflows.
 *
 * A step is unhealthy when its loss or gradient norm is not finite, when the gradient norm is exactly 0 while
 * the loss is not (a saturated model learns nothing), or when the loss spikes: it exceeds a robust running mean
 * by SPIKE_DEVS running mean absolute deviations (with a floor of SPIKE_FLOOR times the mean, so a very steady
 * loss does not make every wobble a spike). The mean and deviation are exponential moving averages; a spike is
 * folded in only up to the threshold (a Huber-style update), so a lasting legitimate rise of the loss (new data)
 * is absorbed within tens of steps while a blow-up stays flagged. Only a finite, non-spiking step ends trouble.
 *
 * Which checkpoint is good: checkpoint step-s holds the weights after s updates, and the loss they give first
 * shows at step s + 1. When trouble began at step d, the weights of step d - 1 are already suspect, so the last
 * good checkpoint is the newest with s <= d - 2 whose own record was healthy when it was saved.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHECKPOINT_STATE, checkpointStep, completedCheckpoints } from '../io/run-dir.js';

/** What a checkpoint's state.json holds about the run's health when it was saved. */
export interface HealthRecord {
  /** Robust running mean of the loss and its mean absolute deviation (null before the first finite step). */
  lossMean: number | null;
  lossDev: number | null;
  /** Healthy steps folded into the mean. */
  healthySteps: number;
  /** The last step's loss and gradient norm (null when not finite), and whether both were finite. */
  loss: number | null;
  gradNorm: number | null;
  finite: boolean;
  /** First step of the current run of unhealthy steps, or null when the last step was healthy. */
  troubleSince: number | null;
}

export type StepHealth = 'ok' | 'spike' | 'non-finite' | 'zero-gradient';

const SPIKE_DEVS = 6;
const SPIKE_FLOOR = 0.05;
/** EMA weight of the newest step (about a 10-step memory). */
const ALPHA = 0.1;

export class HealthTracker {
  private mean: number | null = null;
  private dev = 0;
  private healthy = 0;
  private last: { loss: number; gradNorm: number } = { loss: NaN, gradNorm: NaN };
  private since: number | null = null;

  /** Continues from a checkpoint's record (an old checkpoint without one starts fresh). */
  static restore(r: HealthRecord | undefined): HealthTracker {
    const t = new HealthTracker();
    if (!r) return t;
    t.mean = r.lossMean;
    t.dev = r.lossDev ?? 0;
    t.healthy = r.healthySteps;
    t.last = { loss: r.loss ?? NaN, gradNorm: r.gradNorm ?? NaN };
    t.since = r.troubleSince;
    return t;
  }

  /** The loss above which a step counts as a spike (Infinity before the first healthy step). */
  get threshold(): number {
    if (this.mean === null) return Infinity;
    return this.mean + SPIKE_DEVS * Math.max(this.dev, SPIKE_FLOOR * Math.abs(this.mean));
  }

  /** First step of the current trouble, or null when healthy. */
  get troubleSince(): number | null {
    return this.since;
  }

  /** Classifies step `step` (1-based: steps completed) and updates the running figures. */
  observe(step: number, loss: number, gradNorm: number): StepHealth {
    this.last = { loss, gradNorm };
    let verdict: StepHealth;
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) verdict = 'non-finite';
    else if (gradNorm === 0 && loss > 0) verdict = 'zero-gradient';
    else if (loss > this.threshold) verdict = 'spike';
    else verdict = 'ok';
    if (verdict === 'ok' || verdict === 'spike') {
      const x = Math.min(loss, this.threshold);
      if (this.mean === null) this.mean = x;
      else {
        this.dev += ALPHA * (Math.abs(x - this.mean) - this.dev);
        this.mean += ALPHA * (x - this.mean);
      }
    }
    if (verdict === 'ok') {
      this.healthy++;
      this.since = null;
    } else this.since ??= step;
    return verdict;
  }

  record(): HealthRecord {
    const fin = (x: number) => (Number.isFinite(x) ? x : null);
    return {
      lossMean: this.mean,
      lossDev: this.mean === null ? null : this.dev,
      healthySteps: this.healthy,
      loss: fin(this.last.loss),
      gradNorm: fin(this.last.gradNorm),
      finite: Number.isFinite(this.last.loss) && Number.isFinite(this.last.gradNorm),
      troubleSince: this.since,
    };
  }
}

/** A checkpoint's health record, or undefined when it has none (older versions) or its state is unreadable. */
export function checkpointHealth(dir: string): HealthRecord | undefined {
  try {
    const st = JSON.parse(readFileSync(join(dir, CHECKPOINT_STATE), 'utf8')) as { health?: HealthRecord };
    return st.health;
  } catch {
    return undefined;
  }
}

/** The newest complete checkpoint saved before trouble that began at step `since` (see the header), or null. */
export function lastGoodCheckpoint(runDir: string, since: number): string | null {
  const candidates = completedCheckpoints(runDir).filter((d) => checkpointStep(d) <= since - 2).reverse();
  for (const d of candidates) {
    if (!existsSync(join(d, CHECKPOINT_STATE))) continue;
    const h = checkpointHealth(d);
    if (!h || (h.finite && h.troubleSince === null)) return d;
  }
  return null;
}

/** The message of a run stopped after `bad` consecutive non-finite steps, naming where to resume from. */
export function divergenceMessage(runDir: string, bad: number, since: number): string {
  const good = lastGoodCheckpoint(runDir, since);
  const head = `${bad} consecutive steps had a NaN/Inf loss or gradient; stopping. The loss began to diverge at step ${since}`;
  if (!good)
    return `${head}, and no checkpoint saved before that is left (later ones may hold diverged weights); start again with a lower lr or a stronger clip.`;
  return (
    `${head}; the last good checkpoint, saved before that, is ${good} (intact). Resume from it with a lower lr or a stronger clip: ` +
    `lmforge train --resume ${runDir} --from-step ${checkpointStep(good)} --set lr=...`
  );
}
