/**
 * What the training loop asks at every step: which stage it is in (so which data, sequence length, batch shape,
 * RoPE base and masking), and its learning rate. Each stage runs its own schedule segment (warmup, cosine / WSD
 * / constant) over its own steps; global step s of stage k uses lrAt(s - start_k, stage k's schedule).
 */
import type { ModelConfig } from '../config/model.js';
import { resolveStages, type ResolvedStage, type StagedConfig } from '../config/stages.js';
import { lrAt, validateSchedule, ScheduleError, type ScheduleConfig } from './schedule.js';

export type Stage = ResolvedStage;

export class StageSchedule {
  readonly totalSteps: number;
  private readonly schedules: ScheduleConfig[];

  constructor(
    readonly stages: readonly Stage[],
    /** Whether the config has `stages:` (metrics then carry a stage field). */
    readonly staged: boolean,
  ) {
    if (stages.length === 0) throw new Error('internal: a run has at least one stage');
    this.totalSteps = stages[stages.length - 1]!.end;
    this.schedules = stages.map((st) => {
      const cfg: ScheduleConfig = {
        schedule: st.schedule, lr: st.lr, min_lr: st.minLr, warmup_steps: st.warmupSteps, total_steps: st.steps, decay_fraction: st.decayFraction,
      };
      try {
        return validateSchedule(cfg);
      } catch (e) {
        if (!(e instanceof ScheduleError) || !staged) throw e;
        throw new ScheduleError(`stage ${st.index + 1} (${st.name}): ${e.message}`);
      }
    });
  }

  static fromConfig(tc: StagedConfig, model: ModelConfig, worldSize: number): StageSchedule {
    return new StageSchedule(resolveStages(tc, model.rope_theta, model.context_length, worldSize), tc.stages.length > 0);
  }

  /** The stage that global step `step` (0-based, about to run) belongs to; past the end, the last stage. */
  at(step: number): Stage {
    for (const st of this.stages) if (step < st.end) return st;
    return this.stages[this.stages.length - 1]!;
  }

  lr(step: number): number {
    const st = this.at(step);
    return lrAt(step - st.start, this.schedules[st.index]!);
  }
}
