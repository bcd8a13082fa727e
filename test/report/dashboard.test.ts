/**
 * The dashboard's server without a browser: the run list, incremental metrics, and what it refuses (paths that
 * leave DIR, files that are not routes, other methods, foreign Host headers, non-loopback addresses).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { MetricsLog } from '../../src/train/metrics.js';
import { writeSweepState } from '../../src/io/sweep-dir.js';
import { findRuns, isTraversal, readMetricsFrom, startDashboard, type Dashboard, type RunInfo } from '../../src/report/dashboard.js';

const root = mkdtempSync(join(tmpdir(), 'lmf-dash-'));
const dir = join(root, 'runs');
let d: Dashboard;

function run(path: string, steps: number, total: number): void {
  const log = new MetricsLog(path);
  for (let s = 1; s <= steps; s++) log.train({ step: s, loss: 10 - s / 10, lr: 1e-3, grad_norm: 1, tokens_per_s: 100 });
  log.close();
  writeFileSync(join(path, 'train_config.json'), JSON.stringify({ steps: total, lr: 1e-3 }));
  writeFileSync(join(path, 'model_config.json'), JSON.stringify({ hidden_size: 32 }));
}

before(async () => {
  writeFileSync(join(root, 'secret.txt'), 'outside DIR\n');
  run(join(dir, 'alpha'), 5, 5);
  run(join(dir, 'sweeps', 'toy', 'v1'), 3, 10);
  mkdirSync(join(dir, 'sweeps', 'toy', 'v2'), { recursive: true });
  writeFileSync(join(dir, 'sweeps', 'toy', 'v2', 'train_config.json'), '{}');
  writeSweepState(join(dir, 'sweeps', 'toy'), {
    version: 1, name: 'toy', file: 'toy.yaml', base: null, hold: {}, keys: [], nproc: 1, assumption: '', created: '',
    variants: [
      { id: 'v1', values: {}, sets: [], runDir: 'v1', state: 'running', attempts: 1, prediction: { params: 0, flopsPerToken: 0, tokens: 0, steps: 0, seconds: 0, memoryBytes: 0 } },
      { id: 'v2', values: {}, sets: [], runDir: 'v2', state: 'failed', error: 'boom', attempts: 1, prediction: { params: 0, flopsPerToken: 0, tokens: 0, steps: 0, seconds: 0, memoryBytes: 0 } },
    ],
  });
  d = await startDashboard({ dir, port: 0, scanMs: 100 });
});

after(async () => {
  await d?.close();
});

/** A raw HTTP/1.1 request (so nothing normalises the path first); resolves to the status code. */
function raw(target: string, opts: { method?: string; host?: string } = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = connect(d.port, '127.0.0.1', () => {
      s.write(`${opts.method ?? 'GET'} ${target} HTTP/1.1\r\nHost: ${opts.host ?? `127.0.0.1:${d.port}`}\r\nConnection: close\r\n\r\n`);
    });
    let text = '';
    s.setEncoding('utf8');
    s.on('data', (c: string) => (text += c));
    s.on('end', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)));
    s.on('error', reject);
  });
}

test('lists the runs under DIR with status, progress and configs', async () => {
  assert.deepEqual([...findRuns(dir).keys()].sort(), ['alpha', 'sweeps/toy/v1', 'sweeps/toy/v2']);
  const res = await fetch(`${d.url}api/runs`);
  assert.equal(res.status, 200);
  const { runs } = (await res.json()) as { runs: RunInfo[] };
  const by = Object.fromEntries(runs.map((r) => [r.id, r]));
  assert.deepEqual([by.alpha!.status, by.alpha!.step, by.alpha!.steps, by.alpha!.sweep], ['done', 5, 5, null]);
  assert.deepEqual([by['sweeps/toy/v1']!.status, by['sweeps/toy/v1']!.step, by['sweeps/toy/v1']!.sweep], ['running', 3, 'toy']);
  assert.deepEqual([by['sweeps/toy/v2']!.status, by['sweeps/toy/v2']!.error], ['failed', 'boom']);
  assert.deepEqual(by.alpha!.trainConfig, { steps: 5, lr: 1e-3 });
  for (const [path, type] of [['', 'text/html'], ['app.js', 'text/javascript'], ['chart.js', 'text/javascript'], ['echarts.min.js', 'text/javascript']]) {
    const r = await fetch(`${d.url}${path}`);
    assert.equal(r.status, 200, path);
    assert.match(r.headers.get('content-type') ?? '', new RegExp(type!));
    assert.ok((await r.text()).length > 100, path);
  }
});

test('metrics are read from a byte offset, whole lines only, and start over when the file was cut back', async () => {
  const file = join(dir, 'alpha', 'metrics.jsonl');
  const size = readFileSync(file).length;
  const all = readMetricsFrom(file, 0);
  assert.deepEqual([all.lines.length, all.next, all.reset], [5, size, false]);
  appendFileSync(file, '{"kind":"train","step":6,"loss":9.4}\n{"kind":"tr');
  const more = readMetricsFrom(file, all.next);
  assert.deepEqual(more.lines, ['{"kind":"train","step":6,"loss":9.4}']); // the torn tail waits for its newline
  truncateSync(file, size);
  const back = readMetricsFrom(file, more.next);
  assert.deepEqual([back.reset, back.lines.length], [true, 5]);
  const r = await fetch(`${d.url}api/metrics?run=alpha&from=${size}`);
  assert.deepEqual(await r.json(), { from: size, next: size, reset: false, lines: [] });
  assert.equal((await fetch(`${d.url}api/metrics?run=nope`)).status, 404);
});

test('requests that leave DIR get 403, anything that is not a route 404, other methods 405', async () => {
  for (const t of ['/../secret.txt', '/%2e%2e/secret.txt', '/..%2fsecret.txt', '/%252e%252e/secret.txt', '/..\\secret.txt', '//etc/passwd',
    'http://127.0.0.1/../secret.txt', '/api/metrics?run=../secret.txt', '/api/metrics?run=%2e%2e/x', '/api/metrics?run=/etc/passwd'])
    assert.equal(await raw(t), 403, t);
  for (const t of ['/etc/passwd', '/secret.txt', '/alpha/metrics.jsonl', '/runs/alpha/train_config.json', '/api/metrics?run=alpha/../alpha2', '/index.html', '/src/report/dashboard.ts'])
    assert.equal(await raw(t), t.includes('..') ? 403 : 404, t);
  assert.equal(await raw('/', { method: 'POST' }), 405);
  assert.equal(await raw('/api/runs', { method: 'DELETE' }), 405);
  // A page on another site that resolves its own name to 127.0.0.1 (DNS rebinding) is refused.
  assert.equal(await raw('/api/runs', { host: 'attacker.example:80' }), 403);
  assert.equal(await raw('/api/runs', { host: `localhost:${d.port}` }), 200);
  assert.ok(isTraversal('/a/../b') && isTraversal('/%2E%2E') && !isTraversal('/api/runs?x=a..b') && !isTraversal('/app.js'));
});

/** Local addresses (hex, as /proc/net/tcp{,6} shows them) that listen on `port`. */
function listening(port: number): string[] {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const out: string[] = [];
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const [, local, , st] = line.trim().split(/\s+/);
      if (local?.endsWith(`:${hex}`) && st === '0A') out.push(local.split(':')[0]!); // 0A: LISTEN
    }
  }
  return out;
}

test('it listens on loopback only, unless --host asks for another address', async (t) => {
  if (!readFileSync('/proc/net/tcp', { flag: 'r' }).length) return t.skip('no /proc/net/tcp to read the listening sockets from');
  // The kernel's own table: 0100007F is 127.0.0.1; 00000000 would be every interface.
  assert.deepEqual(listening(d.port), ['0100007F']);
  const open = await startDashboard({ dir, port: 0, host: '0.0.0.0' });
  try {
    assert.deepEqual(listening(open.port), ['00000000']);
    // --host given: the Host header check is off (the user chose to serve other names).
    const r = await fetch(`http://127.0.0.1:${open.port}/api/runs`, { headers: { host: 'my-box.lan' } });
    assert.equal(r.status, 200);
  } finally {
    await open.close();
  }
  await assert.rejects(startDashboard({ dir: join(root, 'secret.txt'), port: 0 }), /is not a directory/);
  await assert.rejects(startDashboard({ dir, port: d.port }), /port \d+ is in use; pick another with --port/);
});
