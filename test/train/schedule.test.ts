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
