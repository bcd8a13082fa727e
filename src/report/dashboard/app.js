// The dashboard page: lists the runs the server reports, keeps each selected run's metrics (fetching only new
// bytes of metrics.jsonl when the server's event stream says a run grew), and draws them with the same chart
// options as the PNG reports (chart.js). Text from the server (run names, configs) only ever goes in textContent.
import { chartOption, smooth, PALETTE } from './chart.js';

/* global echarts */
const state = {
  runs: new Map(), // id -> RunInfo from the server
  selected: new Set(),
  data: new Map(), // id -> { offset, train: [], eval: [] }
  charts: {},
  firstList: true,
};
window.lmforgeDashboard = state;

const CHARTS = [
  ['loss', 'loss', 'cross-entropy (nats)'],
  ['lr', 'learning rate', 'lr'],
  ['throughput', 'throughput', 'tokens/s'],
  ['grad_norm', 'gradient norm', 'global L2 norm'],
];

for (const [key] of CHARTS) {
  const el = document.getElementById(`chart-${key}`);
  state.charts[key] = echarts.init(el, null, { renderer: 'canvas' });
}
window.addEventListener('resize', () => Object.values(state.charts).forEach((c) => c.resize()));

const el = (tag, props = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'text') e.textContent = v;
    else if (k === 'class') e.className = v;
    else if (k === 'style') Object.assign(e.style, v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
};

/** Short names: the last path part, unless two selected runs share it. */
function labels() {
  const ids = [...state.selected].sort();
  const last = (id) => id.split('/').pop();
  const out = new Map();
  for (const id of ids) out.set(id, ids.filter((o) => last(o) === last(id)).length > 1 ? id : last(id));
  return out;
}

function colourOf(id) {
  const ids = [...state.selected].sort();
  const i = ids.indexOf(id);
  return i < 0 ? '#d1d5db' : PALETTE[i % PALETTE.length];
}

function renderRunList() {
  const nav = document.getElementById('runs');
  nav.replaceChildren();
  if (state.runs.size === 0) {
    nav.append(el('div', { class: 'empty', text: 'No runs here yet. Start one with lmforge train or lmforge sweep.' }));
    return;
  }
  const groups = new Map();
  for (const r of state.runs.values()) {
    const g = r.sweep ? `sweep ${r.sweep}` : 'runs';
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g).push(r);
  }
  for (const [g, runs] of groups) {
    nav.append(el('h2', { text: g }));
    for (const r of runs) {
      const box = el('input', { type: 'checkbox', 'data-run': r.id });
      box.checked = state.selected.has(r.id);
      box.addEventListener('change', () => {
        if (box.checked) state.selected.add(r.id);
        else state.selected.delete(r.id);
        refresh();
      });
      const progress = r.steps ? `${r.step}/${r.steps}` : `${r.step}`;
      const badge = el('span', { class: `badge ${r.status}`, text: `${r.status} ${progress}` });
      if (r.error) badge.title = r.error;
      // Under a sweep's heading its runs go by their variant names.
      const shown = r.sweep ? r.id.split('/').pop() : r.id;
      const label = el('label', { title: r.id }, box, el('span', { class: 'swatch', style: { background: colourOf(r.id) } }), el('span', { class: 'name', text: shown }), badge);
      label.dataset.run = r.id;
      nav.append(label);
    }
  }
}

/** Fetches a run's new metrics; one request per run at a time (a change seen meanwhile fetches again after). */
async function fetchMetrics(id) {
  const d = state.data.get(id) ?? { offset: 0, train: [], eval: [], busy: null, again: false };
  state.data.set(id, d);
  if (d.busy) {
    d.again = true;
    return d.busy;
  }
  d.busy = (async () => {
    do {
      d.again = false;
      await fetchOnce(id, d);
    } while (d.again);
  })();
  try {
    await d.busy;
  } finally {
    d.busy = null;
  }
}

async function fetchOnce(id, d) {
  const res = await fetch(`/api/metrics?run=${encodeURIComponent(id)}&from=${d.offset}`);
  if (!res.ok) return;
  const m = await res.json();
  if (m.reset) {
    d.train = [];
    d.eval = [];
  }
  for (const line of m.lines) {
    let r;
    try {
      r = JSON.parse(line);
    } catch {
      continue;
    }
    if (r.kind === 'train') d.train.push(r);
    else if (r.kind === 'eval') d.eval.push(r);
  }
  d.offset = m.next;
}

const num = (v) => (typeof v === 'number' ? v : v === null ? NaN : undefined);

function points(records, field) {
  const out = [];
  for (const r of records) {
    const v = num(r[field]);
    if (v !== undefined) out.push([r.step, v]);
  }
  return out;
}

function draw() {
  const names = labels();
  const ids = [...state.selected].sort().filter((id) => state.data.has(id));
  const series = { loss: [], lr: [], throughput: [], grad_norm: [] };
  let gnMin = Infinity, gnMax = 0;
  for (const id of ids) {
    const d = state.data.get(id);
    const color = colourOf(id);
    const name = names.get(id);
    const train = points(d.train, 'loss');
    series.loss.push({ name, points: train.length > 300 ? smooth(train) : train, color, width: 1.5, markers: false });
    series.loss.push({ name: `${name} val`, points: points(d.eval, 'loss'), color, dashed: true, markers: true });
    series.lr.push({ name, points: points(d.train, 'lr'), color, markers: false });
    const tps = points(d.train, 'tokens_per_s');
    series.throughput.push({ name, points: tps.length > 300 ? smooth(tps) : tps, color, markers: false });
    const gn = points(d.train, 'grad_norm');
    for (const [, v] of gn) if (v > 0 && Number.isFinite(v)) (gnMin = Math.min(gnMin, v)), (gnMax = Math.max(gnMax, v));
    series.grad_norm.push({ name, points: gn, color, width: 1.2, markers: false });
  }
  for (const [key, title, yLabel] of CHARTS) {
    const spec = {
      title, xLabel: 'step', yLabel, series: series[key],
      yFromZero: key === 'throughput',
      logY: key === 'grad_norm' && gnMax / gnMin > 20,
    };
    const chart = state.charts[key];
    chart.setOption(chartOption(spec, { interactive: true, width: chart.getWidth() }), { notMerge: true });
  }
  drawConfig();
}

function drawConfig() {
  const box = document.getElementById('config');
  const ids = [...state.selected].sort();
  const names = labels();
  if (ids.length === 0) {
    box.replaceChildren(el('div', { class: 'empty', text: 'Select runs on the left to draw and compare them.' }));
    return;
  }
  const flat = ids.map((id) => {
    const r = state.runs.get(id) ?? {};
    const out = {};
    // run_dir always differs and model_overrides repeats the model.* rows.
    for (const [k, v] of Object.entries(r.trainConfig ?? {})) if (k !== 'model_overrides' && k !== 'run_dir') out[k] = JSON.stringify(v);
    for (const [k, v] of Object.entries(r.modelConfig ?? {})) out[`model.${k}`] = JSON.stringify(v);
    return out;
  });
  const keys = [...new Set(flat.flatMap((f) => Object.keys(f)))].sort();
  const all = document.getElementById('all-keys').checked;
  const table = el('table', {}, el('tr', {}, el('th', { text: 'key' }), ...ids.map((id) => el('th', { text: names.get(id), style: { color: colourOf(id) } }))));
  let shown = 0;
  for (const k of keys) {
    const vals = flat.map((f) => f[k] ?? '');
    const differs = new Set(vals).size > 1;
    if (!all && !differs && ids.length > 1) continue;
    shown++;
    table.append(el('tr', { class: differs ? 'differs' : '' }, el('td', { text: k }), ...vals.map((v) => el('td', { text: v }))));
  }
  box.replaceChildren(shown ? table : el('div', { class: 'empty', text: 'The selected runs have the same config (tick "all keys" to see it).' }));
}

let drawQueued = false;
function scheduleDraw() {
  if (drawQueued) return;
  drawQueued = true;
  setTimeout(() => {
    drawQueued = false;
    draw();
  }, 100);
}

async function refresh() {
  renderRunList();
  await Promise.all([...state.selected].filter((id) => state.runs.has(id)).map((id) => {
    const d = state.data.get(id);
    return !d || d.offset !== state.runs.get(id).size ? fetchMetrics(id) : null;
  }));
  scheduleDraw();
}

function onRuns(list) {
  state.runs = new Map(list.map((r) => [r.id, r]));
  for (const id of [...state.selected]) if (!state.runs.has(id)) state.selected.delete(id);
  if (state.firstList) {
    state.firstList = false;
    // Start with what is training, else the most recently written run.
    for (const r of list) if (r.status === 'running') state.selected.add(r.id);
    if (state.selected.size === 0 && list.length) state.selected.add([...list].sort((a, b) => b.mtimeMs - a.mtimeMs)[0].id);
  }
  refresh();
}

document.getElementById('all-keys').addEventListener('change', drawConfig);

const live = document.getElementById('live');
const events = new EventSource('/api/events');
events.addEventListener('runs', (e) => {
  const { runs } = JSON.parse(e.data);
  onRuns(runs);
});
events.addEventListener('open', () => {
  live.textContent = 'live';
  live.classList.remove('off');
});
events.addEventListener('error', () => {
  live.textContent = 'disconnected (retrying)';
  live.classList.add('off');
});
fetch('/api/runs').then((r) => r.json()).then((r) => {
  document.getElementById('where').textContent = r.root;
});
