import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { MetricsLog, readMetrics, readMetricsDetailed, MetricsError, metricsPath } from '../../src/train/metrics.js';
import { fullDisk, shortWrites, withFault } from '../fs-faults.js';

const tmpRun = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'lmforge-metrics-'));

test('records round-trip, one JSON object per line, kind and step first', () => {
  const dir = tmpRun();
  const log = new MetricsLog(dir);
  log.train({ step: 1, loss: 10.5, lr: 1e-4, grad_norm: 2.5, tokens_per_s: 1234.5 });
  log.eval({ step: 1, loss: 10.2, ppl: Math.exp(10.2) });
  log.event(1, 'checkpoint', { path: 'ckpt/step-1', kind: 'not-this' });
  log.train({ step: 2, loss: NaN, lr: 2e-4, grad_norm: Infinity, tokens_per_s: 1000 });
  log.close();
  const text = fs.readFileSync(metricsPath(dir), 'utf8');
  const lines = text.trimEnd().split('\n');
  assert.equal(lines.length, 4);
  assert.ok(lines[0]!.startsWith('{"kind":"train","step":1,'));
  assert.ok(lines[2]!.startsWith('{"kind":"event","step":1,"event":"checkpoint"'));
  const recs = readMetrics(dir);
  assert.deepEqual(recs[1], { kind: 'eval', step: 1, loss: 10.2, ppl: Math.exp(10.2) });
  assert.equal(recs[2]!.path, 'ckpt/step-1');
  assert.equal(recs[2]!.kind, 'event');
  // JSON has no NaN: non-finite numbers become null and the line stays valid.
  assert.equal(recs[3]!.loss, null);
  assert.equal(recs[3]!.grad_norm, null);
});

test('a torn last line is dropped by readers and cut off before the next append', () => {
  const dir = tmpRun();
  const log = new MetricsLog(dir);
  for (let s = 1; s <= 3; s++) log.train({ step: s, loss: 5 - s, lr: 1e-3, grad_norm: 1, tokens_per_s: 10 });
  log.close();
  fs.appendFileSync(metricsPath(dir), '{"kind":"train","step":4,"lo');
  const r = readMetricsDetailed(dir);
  assert.equal(r.tornTail, true);
  assert.deepEqual(r.records.map((x) => x.step), [1, 2, 3]);
  const again = new MetricsLog(dir);
  again.train({ step: 4, loss: 0.5, lr: 1e-3, grad_norm: 1, tokens_per_s: 10 });
  again.close();
  const r2 = readMetricsDetailed(dir);
  assert.equal(r2.tornTail, false);
  assert.deepEqual(r2.records.map((x) => x.step), [1, 2, 3, 4]);
  // A file holding only a torn fragment is cut to empty.
  const dir2 = tmpRun();
  fs.writeFileSync(metricsPath(dir2), '{"kind":"tr');
  new MetricsLog(dir2).close();
  assert.equal(fs.readFileSync(metricsPath(dir2), 'utf8'), '');
});

test('a corrupt line in the middle is an error naming the line', () => {
  const dir = tmpRun();
  fs.writeFileSync(metricsPath(dir), '{"kind":"train","step":1}\nnot json\n{"kind":"train","step":2}\n');
  assert.throws(() => readMetrics(dir), (e: Error) => e instanceof MetricsError && /line 2 is not a metrics record/.test(e.message));
  fs.writeFileSync(metricsPath(dir), '{"kind":"train","step":1}\n{"kind":"bogus","step":2}\n{"kind":"eval","step":2}\n');
  assert.throws(() => readMetrics(dir), /line 2 .*kind must be one of train, eval, event/);
  assert.throws(() => readMetrics(path.join(dir, 'nope')), /does not exist: is .* a run directory/);
});

test('resume drops the records after the resumed step, atomically', () => {
  const dir = tmpRun();
  const log = new MetricsLog(dir);
  for (let s = 1; s <= 10; s++) {
    log.train({ step: s, loss: 1 / s, lr: 1e-3, grad_norm: 1, tokens_per_s: 10 });
    if (s % 5 === 0) log.eval({ step: s, loss: 2 / s });
  }
  log.close();
  fs.appendFileSync(metricsPath(dir), '{"kind":"tra'); // the killed run's torn last write
  const resumed = new MetricsLog(dir, { resumeStep: 6 });
  resumed.train({ step: 7, loss: 0.125, lr: 1e-3, grad_norm: 1, tokens_per_s: 10 });
  resumed.close();
  const recs = readMetrics(dir);
  assert.deepEqual(recs.map((r) => `${r.kind}${r.step}`), ['train1', 'train2', 'train3', 'train4', 'train5', 'eval5', 'train6', 'train7']);
  assert.equal(recs[7]!.loss, 0.125);
  assert.deepEqual(fs.readdirSync(dir), ['metrics.jsonl']); // no temp file left behind
});

test('a SIGKILLed writer loses nothing that append() returned from', () => {
  const dir = tmpRun();
  const mod = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../src/train/metrics.js');
  const script =
    `import { MetricsLog } from ${JSON.stringify(mod)};` +
    `const log = new MetricsLog(${JSON.stringify(dir)});` +
    `for (let s = 1; s <= 200; s++) log.train({ step: s, loss: 1, lr: 1, grad_norm: 1, tokens_per_s: 1 });` +
    `process.kill(process.pid, 'SIGKILL');`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script]);
  assert.equal(r.signal, 'SIGKILL');
  const recs = readMetrics(dir);
  assert.equal(recs.length, 200);
  assert.equal(recs[199]!.step, 200);
});

test('short writes never tear a record; a full disk is an error naming the file', () => {
  const dir = tmpRun();
  const log = new MetricsLog(dir);
  withFault(shortWrites, () => {
    for (let step = 1; step <= 20; step++) log.train({ step, loss: 1 / step, lr: 1e-3, grad_norm: 1, tokens_per_s: 100, note: 'x'.repeat(step * 10) });
  });
  assert.throws(
    () => withFault(() => fullDisk(10), () => log.train({ step: 21, loss: 1, lr: 1, grad_norm: 1, tokens_per_s: 1, note: 'y'.repeat(100) })),
    (e: Error) => e.message.startsWith(metricsPath(dir)) && /ENOSPC/.test(e.message),
  );
  log.train({ step: 21, loss: 1, lr: 1, grad_norm: 1, tokens_per_s: 1 }); // space again: the next line is clean
  log.close();
  const { records } = readMetricsDetailed(dir);
  assert.deepEqual(records.slice(0, 20).map((r) => r.step), Array.from({ length: 20 }, (_, i) => i + 1));
  assert.equal(records[19]!.note, 'x'.repeat(200));
  assert.equal(records.length, 21);
  // Resume-style truncation goes through the same safe write.
  withFault(shortWrites, () => MetricsLog.truncateAfter(dir, 10));
  assert.deepEqual(readMetrics(dir).map((r) => r.step), Array.from({ length: 10 }, (_, i) => i + 1));
});
