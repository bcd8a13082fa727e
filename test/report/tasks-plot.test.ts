/** The report draws downstream-task accuracies (eval records with a `task`) when a run has them, and only then. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeReport } from '../../src/report/run-plots.js';
import { MetricsLog } from '../../src/train/metrics.js';
import { decodePng } from './png-decode.js';

test('report: tasks.png holds one series per task and metric', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lmforge-report-'));
  const log = new MetricsLog(dir);
  for (let s = 1; s <= 100; s++) {
    log.train({ step: s, loss: 5 - s / 50, lr: 1e-3, grad_norm: 1, tokens_per_s: 1000 });
    if (s % 25 === 0) {
      log.eval({ step: s, loss: 5 - s / 50 });
      log.eval({ step: s, task: 'hellaswag', n: 100, acc: 0.25 + s / 1000, acc_stderr: 0.04, acc_norm: 0.26 + s / 800, acc_norm_stderr: 0.04 });
      log.eval({ step: s, task: 'lambada_openai', n: 100, perplexity: 900 - s, acc: 0.01 * (s / 25) });
    }
  }
  log.close();
  const files = writeReport(dir).map((f) => path.basename(f));
  assert.deepEqual(files, ['loss.png', 'lr.png', 'throughput.png', 'grad_norm.png', 'tasks.png']);
  const png = decodePng(fs.readFileSync(path.join(dir, 'plots', 'tasks.png')));
  // Three series: blue (hellaswag acc), orange (hellaswag acc_norm), green (lambada acc).
  let blue = 0, orange = 0, green = 0;
  for (let i = 0; i < png.rgb.length; i += 3) {
    const [r, g, b] = [png.rgb[i]!, png.rgb[i + 1]!, png.rgb[i + 2]!];
    if (b > r + 60 && b > g + 40) blue++;
    if (r > g + 50 && g > b + 30) orange++;
    if (g > r + 40 && g > b + 40) green++;
  }
  assert.ok(blue > 100 && orange > 100 && green > 100, `series drawn: blue ${blue}, orange ${orange}, green ${green}`);
  // The validation-loss plot ignores the task records (they have no loss).
  assert.ok(fs.statSync(path.join(dir, 'plots', 'loss.png')).size > 0);
});
