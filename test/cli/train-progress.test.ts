import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Progress, formatDuration, formatCount, type ProgressStream } from '../../src/cli/train-progress.js';

class Capture implements ProgressStream {
  out = '';
  constructor(public isTTY: boolean, public columns = 120) {}
  write(s: string): boolean {
    this.out += s;
    return true;
  }
}

/** What a terminal shows: '\r' returns to column 0, ESC[2K clears the line. */
function screen(raw: string): string[] {
  const lines: string[] = [''];
  for (let i = 0; i < raw.length; i++) {
    if (raw.startsWith('\x1b[2K', i)) {
      lines[lines.length - 1] = '';
      i += 3;
    } else if (raw[i] === '\r') lines[lines.length - 1] = '';
    else if (raw[i] === '\n') lines.push('');
    else lines[lines.length - 1] += raw[i];
  }
  return lines;
}

test('durations and counts format compactly', () => {
  assert.equal(formatDuration(42), '42s');
  assert.equal(formatDuration(725), '12m05s');
  assert.equal(formatDuration(3 * 3600 + 4 * 60 + 59), '3h04m');
  assert.equal(formatDuration(5 * 86400 + 7200), '5d02h');
  assert.equal(formatDuration(NaN), '?');
  assert.equal(formatCount(950), '950');
  assert.equal(formatCount(12_345), '12.3k');
  assert.equal(formatCount(654_321), '654k');
  assert.equal(formatCount(4_500_000), '4.50M');
});

test('terminal: one line redrawn in place, log lines above it, ETA from the step rate', () => {
  let t = 0;
  const s = new Capture(true);
  const p = new Progress({ total: 100, stream: s, now: () => t, redrawMs: 0 });
  p.update({ step: 10, loss: 5.5, lr: 3e-4, tokensPerS: 12_345, mfu: 0.412 });
  t = 9000; // 10 more steps in 9 s: 0.9 s/step, 80 steps left -> 72 s (at step 21: 9/11 s x 79 = 64.6 s)
  p.update({ step: 20, loss: 4.25, lr: 6e-4, tokensPerS: 12_000, mfu: 0.4 });
  p.log('eval step 20: val loss 4.1');
  p.update({ step: 21, loss: 4.2, lr: 6e-4, tokensPerS: 12_000, gflops: 35.25 });
  p.done();
  const lines = screen(s.out);
  assert.equal(lines.length, 3);
  assert.equal(lines[0], 'eval step 20: val loss 4.1');
  assert.match(lines[1]!, /^\[#{6}\.{24}\] step 21\/100 \| loss 4\.2000 \| lr 6\.00e-4 \| 12\.0k tok\/s \| 35\.3 GFLOP\/s \| ETA 1m05s$/);
  assert.equal(lines[2], '');
  assert.ok(lines[1]!.length < 120);
  assert.match(p.statusText({ step: 20, loss: 4.25, lr: 6e-4, tokensPerS: 12_000, mfu: 0.4 }), /MFU 40\.0% \| ETA 1m12s$/);
});

test('terminal: redraws are throttled except for the last step; narrow terminals drop the bar', () => {
  let t = 0;
  const s = new Capture(true, 60);
  const p = new Progress({ total: 3, stream: s, now: () => t, redrawMs: 100 });
  p.update({ step: 1, loss: 1, lr: 1, tokensPerS: 1 });
  t = 50;
  p.update({ step: 2, loss: 1, lr: 1, tokensPerS: 1 }); // within 100 ms: skipped
  t = 60;
  p.update({ step: 3, loss: 1, lr: 1, tokensPerS: 1 }); // last step: drawn
  assert.equal(s.out.split('\r').length - 1, 2);
  assert.ok(!s.out.includes('#'));
  for (const l of screen(s.out)) assert.ok(l.length < 60);
});

test('not a terminal: a plain line every k steps and at the end, no escape codes', () => {
  const s = new Capture(false);
  const p = new Progress({ total: 10, stream: s, every: 4, now: () => 0 });
  for (let i = 1; i <= 9; i++) p.update({ step: i, loss: 1 / i, lr: 1e-3, tokensPerS: 100 });
  p.log('checkpoint saved');
  p.done();
  assert.ok(!s.out.includes('\r') && !s.out.includes('\x1b'));
  const lines = s.out.trimEnd().split('\n');
  assert.deepEqual(lines.map((l) => l.split(' | ')[0]), ['step 4/10', 'step 8/10', 'checkpoint saved', 'step 9/10']);
});
