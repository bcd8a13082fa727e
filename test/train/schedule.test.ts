import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lrAt, validateSchedule, ScheduleError, type ScheduleConfig } from '../../src/train/schedule.js';

const close = (a: number, b: number, msg?: string): void =>
  assert.ok(Math.abs(a - b) <= 1e-12 + 1e-9 * Math.abs(b), `${msg ?? ''} got ${a}, expected ${b}`);

test('cosine: linear warmup then half-cosine to min_lr at total_steps', () => {
  const c: ScheduleConfig = { schedule: 'cosine', lr: 1e-3, min_lr: 1e-4, warmup_steps: 10, total_steps: 110, decay_fraction: 0 };
  close(lrAt(0, c), 1e-4); // 1e-3 * 1/10
  close(lrAt(4, c), 5e-4); // 1e-3 * 5/10
  close(lrAt(9, c), 1e-3); // 1e-3 * 10/10
  close(lrAt(10, c), 1e-3); // p = 0
  close(lrAt(35, c), 1e-4 + (0.9e-3 * (1 + Math.SQRT1_2)) / 2); // p = 25/100, cos(pi/4)
  close(lrAt(35, c), 8.68198051533946e-4);
  close(lrAt(60, c), 5.5e-4); // p = 1/2: midpoint of 1e-3 and 1e-4
  close(lrAt(110, c), 1e-4);
  close(lrAt(500, c), 1e-4); // past the end: stays at the floor
  // Monotone non-increasing after warmup.
  for (let s = 10; s < 120; s++) assert.ok(lrAt(s + 1, c) <= lrAt(s, c));
});

test('wsd: warmup, stable at lr, linear decay over the last decay_fraction', () => {
  const c: ScheduleConfig = { schedule: 'wsd', lr: 1e-3, min_lr: 0, warmup_steps: 10, total_steps: 100, decay_fraction: 0.2 };
  close(lrAt(0, c), 1e-4);
  close(lrAt(10, c), 1e-3);
  close(lrAt(50, c), 1e-3);
  close(lrAt(79, c), 1e-3); // decay starts at 100 - 20 = 80
  close(lrAt(80, c), 1e-3);
  close(lrAt(90, c), 5e-4); // 10 of 20 decay steps
  close(lrAt(99, c), 5e-5); // 1e-3 * (1 - 19/20)
  close(lrAt(100, c), 0);
  // Non-zero floor: 2e-4 + (1e-3 - 2e-4) * (1 - 5/20) = 8e-4
  close(lrAt(85, { ...c, min_lr: 2e-4 }), 8e-4);
  // Decay window longer than the post-warmup run: decay starts right after warmup.
  const overlap = { ...c, warmup_steps: 50, decay_fraction: 0.8 };
  close(lrAt(50, overlap), 1e-3);
  close(lrAt(75, overlap), 5e-4);
});

test('constant: warmup then flat', () => {
  const c: ScheduleConfig = { schedule: 'constant', lr: 3e-4, min_lr: 0, warmup_steps: 4, total_steps: 10, decay_fraction: 0 };
  close(lrAt(1, c), 1.5e-4); // 3e-4 * 2/4
  close(lrAt(3, c), 3e-4);
  close(lrAt(9, c), 3e-4);
  close(lrAt(0, { ...c, warmup_steps: 0 }), 3e-4);
});

test('bad settings are rejected with the setting named', () => {
  const ok: ScheduleConfig = { schedule: 'cosine', lr: 1e-3, min_lr: 1e-4, warmup_steps: 10, total_steps: 100, decay_fraction: 0.2 };
  assert.doesNotThrow(() => validateSchedule(ok));
  assert.throws(() => validateSchedule({ ...ok, min_lr: 1e-2 }), /min_lr .* is above lr/);
  assert.throws(() => validateSchedule({ ...ok, warmup_steps: 200 }), /warmup_steps \(200\) exceeds total_steps/);
  assert.throws(() => validateSchedule({ ...ok, schedule: 'wsd', decay_fraction: 0 }), /decay_fraction/);
  assert.throws(() => validateSchedule({ ...ok, schedule: 'linear' as never }), /unknown; use one of cosine, wsd, constant/);
  assert.throws(() => validateSchedule({ ...ok, lr: -1 }), ScheduleError);
  assert.throws(() => lrAt(-1, ok), /step must be an integer/);
});

test('each bad setting alone is rejected with its own message; the edges of the valid ranges are accepted', () => {
  const ok: ScheduleConfig = { schedule: 'cosine', lr: 1e-3, min_lr: 0, warmup_steps: 10, total_steps: 100, decay_fraction: 0.2 };
  const rejects = (change: Partial<ScheduleConfig>, re: RegExp): void => {
    assert.throws(() => validateSchedule({ ...ok, ...change }), (e: unknown) => e instanceof ScheduleError && re.test(e.message), JSON.stringify(change));
  };
  rejects({ lr: 0 }, /^lr schedule: lr must be a positive number, got 0$/);
  rejects({ lr: NaN }, /lr must be a positive number, got NaN/);
  rejects({ lr: Infinity }, /lr must be a positive number, got Infinity/);
  rejects({ min_lr: -1e-9 }, /^lr schedule: min_lr must be >= 0, got -1e-9$/);
  rejects({ min_lr: NaN }, /min_lr must be >= 0, got NaN/);
  rejects({ min_lr: Infinity, schedule: 'constant' }, /min_lr must be >= 0, got Infinity/);
  rejects({ total_steps: 0 }, /^lr schedule: total_steps must be a positive integer, got 0$/);
  rejects({ total_steps: 10.5 }, /total_steps must be a positive integer, got 10.5/);
  rejects({ warmup_steps: -1 }, /^lr schedule: warmup_steps must be an integer >= 0, got -1$/);
  rejects({ warmup_steps: 1.5 }, /warmup_steps must be an integer >= 0, got 1.5/);
  rejects({ warmup_steps: 101 }, /^lr schedule: warmup_steps \(101\) exceeds total_steps \(100\); shorten the warmup$/);
  rejects({ schedule: 'wsd', decay_fraction: 1.01 }, /^lr schedule: decay_fraction must be in \(0, 1\] for wsd, got 1.01/);
  rejects({ schedule: 'wsd', decay_fraction: -0.1 }, /decay_fraction must be in/);
  rejects({ min_lr: 2e-3 }, /^lr schedule: min_lr \(0.002\) is above lr \(0.001\); the decay would raise the lr. Set min_lr <= lr$/);
  for (const edge of [
    { min_lr: 0 }, { min_lr: 1e-3 }, { warmup_steps: 0 }, { warmup_steps: 100 }, { total_steps: 10 },
    { schedule: 'wsd', decay_fraction: 1 } as const, { schedule: 'cosine', decay_fraction: 0 } as const,
    { schedule: 'constant', min_lr: 5e-3 } as const, { schedule: 'constant', decay_fraction: 7 } as const,
  ])
    assert.doesNotThrow(() => validateSchedule({ ...ok, ...edge }), JSON.stringify(edge));
  // lrAt itself refuses a schedule it does not know (a config that skipped validation).
  assert.throws(() => lrAt(20, { ...ok, schedule: 'linear' as never }), /unknown schedule 'linear'/);
  assert.throws(() => lrAt(1.5, ok), /step must be an integer >= 0, got 1.5/);
});

test('degenerate lengths: no decay room ends at min_lr, never NaN', () => {
  // Warmup as long as the run: the steps past it sit at the floor.
  const cos: ScheduleConfig = { schedule: 'cosine', lr: 1e-3, min_lr: 1e-4, warmup_steps: 10, total_steps: 10, decay_fraction: 0 };
  close(lrAt(9, cos), 1e-3);
  close(lrAt(10, cos), 1e-4);
  close(lrAt(11, cos), 1e-4);
  // WSD whose decay rounds to zero steps: stable to the end, then the floor.
  const wsd: ScheduleConfig = { schedule: 'wsd', lr: 1e-3, min_lr: 1e-4, warmup_steps: 0, total_steps: 100, decay_fraction: 0.004 };
  close(lrAt(99, wsd), 1e-3);
  close(lrAt(100, wsd), 1e-4);
  close(lrAt(150, wsd), 1e-4);
  // WSD decay window rounds half up: 0.25 x 10 = 2.5 -> 3 decay steps, starting at step 7.
  const half: ScheduleConfig = { schedule: 'wsd', lr: 1, min_lr: 0, warmup_steps: 0, total_steps: 10, decay_fraction: 0.25 };
  close(lrAt(6, half), 1);
  close(lrAt(8, half), 2 / 3);
  for (const c of [cos, wsd, half]) for (let s = 0; s < 120; s++) assert.ok(Number.isFinite(lrAt(s, c)), `step ${s}`);
});
