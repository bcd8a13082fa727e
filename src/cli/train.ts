/**
 * `lmforge train [--config FILE] [--set key=value ...] [--resume RUN]`. With no arguments: a small Qwen3-style model
 * (cpu-tiny, the real 151,936-token vocabulary) on the bundled English corpus, on the CPU, in a few minutes.
 */
import { parseArgs, usage, UsageError, type FlagSpec } from './args.js';
import { loadTrainConfig, trainConfigFromRecord, TRAIN_KEYS, type TrainConfig } from '../config/train.js';
import { describeData } from '../config/stages.js';
import { describeTable } from '../config/schema.js';
import { defaultRunDir, resolveModelConfig, Trainer } from '../train/trainer.js';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { launcherWorldSize } from '../parallel/group.js';
import { relaunchUnderMpirun, withoutFlag } from '../parallel/launch.js';
import { cleanRunDir, latestCheckpoint, RUN_FILES } from '../io/run-dir.js';
import { Progress } from './train-progress.js';
import { readTrainState, resumeCheckpoint } from '../train/checkpoint.js';

const FLAGS: Record<string, FlagSpec> = {
  config: { type: 'string', help: 'training config file (JSON or YAML), e.g. config/cpu_tiny.yaml' },
  set: { type: 'list', help: 'override keys: --set steps=100 lr=1e-3 model.n_layer=6' },
  resume: { type: 'string', help: 'resume the run in this directory from its latest checkpoint (bit-exact)' },
  'from-step': { type: 'number', help: 'with --resume: go back to the checkpoint saved at this step (later ones move to checkpoints/abandoned/)' },
  'run-dir': { type: 'string', help: 'run directory (default runs/<model>-<time>)' },
  quiet: { type: 'boolean', help: 'no progress bar' },
  nproc: { type: 'number', help: 'data-parallel ranks on this host: reruns the command under mpirun -np N (or launch with mpirun/srun yourself)' },
  zero1: { type: 'boolean', help: 'shard the AdamW moments over the ranks (ZeRO-1): optimizer memory per rank / N' },
  dashboard: { type: 'boolean', help: 'serve the live dashboard of this run and its neighbours on 127.0.0.1 while it trains' },
  'dashboard-port': { type: 'number', help: 'port of --dashboard (0 = any free one)', default: 8090 },
  keys: { type: 'boolean', help: 'list every training config key with its default' },
  help: { type: 'boolean', help: 'show this help' },
};

export async function run(argv: string[]): Promise<number> {
  const { flags, positionals } = parseArgs('train', argv, FLAGS);
  if (flags.help) {
    process.stdout.write(usage('train', '[--config FILE] [--set key=value ...] [--resume RUN]', FLAGS) + '\n');
    return 0;
  }
  if (flags.keys) {
    process.stdout.write(describeTable(TRAIN_KEYS).join('\n') + '\n');
    return 0;
  }
  if (positionals.length) throw new Error(`train: unexpected argument '${positionals[0]}'; use --config FILE or --set key=value`);
  const resume = flags.resume as string | undefined;
  const fromStep = flags['from-step'] as number | undefined;
  if (fromStep !== undefined && !resume) throw new UsageError('train: --from-step needs --resume RUN');
  if (fromStep !== undefined && !(Number.isInteger(fromStep) && fromStep >= 1))
    throw new UsageError(`train: --from-step must be a checkpoint's step (a whole number >= 1), got ${fromStep}`);
  let configFile = flags.config as string | undefined;
  const sets = (flags.set as string[] | undefined) ?? [];
  let tc;
  if (resume) {
    if (configFile) throw new Error('train: --resume uses the run\'s saved config; drop --config (use --set to change a key)');
    configFile = undefined;
    tc = savedRunConfig(resume, sets);
    tc.run_dir = resume;
  } else {
    tc = loadTrainConfig(configFile, sets);
    if (flags['run-dir']) tc.run_dir = flags['run-dir'] as string;
  }
  if (resume) {
    const ckpt = resumeCheckpoint(resume, fromStep);
    if (!ckpt) {
      process.stderr.write(`lmforge train: ${resume} has no complete checkpoint yet (the run stopped before its first one); it starts again from step 0 with its saved config\n`);
    } else {
      const done = readTrainState(ckpt).step;
      if (done >= tc.steps) {
        cleanRunDir(resume); // only leftovers of a process killed after its last checkpoint (a plot being drawn)
        process.stderr.write(
          `lmforge train: the run in ${resume} is complete (${done} of ${tc.steps} steps); nothing to do. ` +
            `To train further, raise steps: lmforge train --resume ${resume} --set steps=${done + Math.max(1, tc.steps)}\n`,
        );
        return 0;
      }
    }
  }
  const modelCfg = resolveModelConfig(tc);
  const nproc = flags.nproc as number | undefined;
  if (nproc !== undefined && launcherWorldSize() === null) {
    // Fix the run directory here so every rank and the resume hint agree on it.
    const runDir = tc.run_dir || defaultRunDir(tc);
    const rest = withoutFlag(withoutFlag(argv, 'nproc'), 'run-dir');
    const args = resume ? ['train', ...rest] : ['train', ...rest, '--run-dir', runDir];
    const code = await relaunchUnderMpirun(nproc, process.argv[1]!, args);
    if (code !== 0) {
      const last = latestCheckpoint(runDir);
      process.stderr.write(
        `lmforge train: the ${nproc}-rank run stopped (mpirun exit code ${code}). ` +
          (last ? `The last complete checkpoint is ${last}; continue with: lmforge train --resume ${runDir} --nproc ${nproc}\n` : 'No checkpoint was written.\n'),
      );
    }
    return code;
  }
  const runDir = tc.run_dir || defaultRunDir(tc);
  tc.run_dir = runDir;
  if (flags.zero1) tc.zero1 = true;
  const trainer = new Trainer(tc, modelCfg, runDir, { zero1: tc.zero1 });
  const { group } = trainer;
  const lead = group.rank === 0;
  const quiet = flags.quiet === true || !lead;
  const say = (s: string) => {
    if (!quiet) process.stderr.write(s + '\n');
  };
  say(`lmforge train: ${tc.model} (${(trainer.model.layout.total / 1e6).toFixed(2)}M parameters), ${trainer.be.describe()}`);
  if (group.size > 1) {
    say(`data parallel: ${group.describe()}; global batch ${tc.micro_batch} x ${tc.grad_accum} x ${group.size} ranks`);
  }
  {
    const mib = (b: number) => (b / 2 ** 20).toFixed(2);
    say(`optimizer: ${trainer.opt.describe()}; AdamW state ${mib(trainer.opt.stateBytes())} MiB per rank (engine allocation ${mib(trainer.optimizerBytes)} MiB)`);
  }
  say(`run directory: ${trainer.runDir}`);
  await trainer.setup(Boolean(resume), { fromStep });
  let dashboard: { close(): Promise<void> } | null = null;
  if (flags.dashboard && lead) {
    const { startDashboardThread } = await import('../report/dashboard-thread.js');
    const d = await startDashboardThread({ dir: dirname(resolve(trainer.runDir)), port: flags['dashboard-port'] as number });
    dashboard = d;
    // Printed even with --quiet: the flag asked for this address.
    process.stderr.write(`dashboard: ${d.url} (stops when the run ends; afterwards: lmforge dashboard ${dirname(trainer.runDir)})\n`);
  }
  const ranks = group.size > 1 ? ` on each of ${group.size} ranks` : '';
  const { stages } = trainer.schedule;
  if (trainer.schedule.staged)
    say(`${stages.length} stages, ${tc.steps} steps: ` + stages.map((st) => `${st.name} ${st.steps} x ${st.microBatch} x ${st.gradAccum} x ${st.seq}`).join(', ') + ` tokens${ranks}`);
  else say(`data: ${describeData(tc.data)}; ${tc.steps} steps of ${tc.micro_batch} x ${tc.grad_accum} x ${tc.seq} tokens${ranks}`);
  const progress = quiet ? null : new Progress({ total: tc.steps, stream: process.stderr });
  const result = await trainer.run(
    progress ? { onStep: (r) => progress.update(r), onLog: (line) => progress.log(line), onEnd: () => progress.done() } : {},
  );
  await dashboard?.close();
  if (!lead) {
    trainer.dispose();
    return 0;
  }
  const { writeReport } = await import('../report/run-plots.js');
  const plots = writeReport(trainer.runDir);
  say(`plots: ${plots.join(', ')}`);
  if (result.stoppedEarly) say(`stopped after step ${result.steps}: ${result.stoppedEarly}`);
  if (result.firstValLoss !== null && result.lastValLoss !== null)
    say(`validation loss ${result.firstValLoss.toFixed(3)} -> ${result.lastValLoss.toFixed(3)}`);
  if (tc.sample_tokens > 0) {
    const { sampleFromTrainer } = await import('../train/sample.js');
    await sampleFromTrainer(trainer, tc.sample_prompt, tc.sample_tokens, tc.seed);
  }
  trainer.dispose();
  return 0;
}


/**
 * The saved config of a run as `key=value` settings, with a clear error when the directory is missing or holds
 * no run. min_lr is left to follow a new lr (--set lr=...) when it was the default (lr / 10), so lowering lr
 * after a divergence does not leave min_lr above it.
 */
function savedRunConfig(runDir: string, sets: readonly string[]): TrainConfig {
  if (!existsSync(runDir)) throw new Error(`--resume ${runDir}: no such run directory`);
  if (!statSync(runDir).isDirectory()) throw new Error(`--resume ${runDir}: not a directory; give a run directory written by 'lmforge train'`);
  const file = join(runDir, RUN_FILES.trainConfig);
  if (!existsSync(file))
    throw new Error(
      `--resume ${runDir}: no ${RUN_FILES.trainConfig} there: the run was stopped before it started (or this is not a run directory); ` +
        `start it again with the original command and --run-dir ${runDir}`,
    );
  let saved: Record<string, unknown>;
  try {
    saved = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message}); the run's saved config is damaged`);
  }
  // A new lr without a new min_lr: a min_lr that was the default (lr/10) follows the new lr.
  const setsLr = sets.some((s) => s.startsWith('lr=')) && !sets.some((s) => s.startsWith('min_lr='));
  if (setsLr && saved.min_lr === Number((Number(saved.lr) / 10).toPrecision(12))) delete saved.min_lr;
  return trainConfigFromRecord(saved, sets, file);
}
