/**
 * `lmforge forward-backward --model DIR --batch FILE --out FILE [--train-steps N --lr X --beta1 X --beta2 X --eps X
 *  --weight-decay X --clip X] [--device cpu|cuda|cuda-interpret|auto] [--threads N]`
 * Writes logits, loss and grad.<HF name> for every parameter (and train.* with --train-steps) to a safetensors file.
 */
import { parseArgs, usage, UsageError, type FlagSpec } from './args.js';
import { createBackend, DEVICE_NAMES, parseDevice } from '../engine/index.js';
import { openHfModel } from '../io/hf-checkpoint.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import { forwardBackward } from '../parity/forward-backward.js';

const FLAGS: Record<string, FlagSpec> = {
  model: { type: 'string', help: 'Hugging Face model directory (config.json + safetensors)' },
  batch: { type: 'string', help: 'safetensors file with int64 input_ids and labels [batch, seq]' },
  out: { type: 'string', help: 'output safetensors file' },
  'train-steps': { type: 'number', help: 'AdamW steps on the same batch after the gradient', default: 0 },
  lr: { type: 'number', help: 'AdamW learning rate', default: 1e-3 },
  beta1: { type: 'number', help: 'AdamW beta1', default: 0.9 },
  beta2: { type: 'number', help: 'AdamW beta2', default: 0.999 },
  eps: { type: 'number', help: 'AdamW epsilon', default: 1e-8 },
  'weight-decay': { type: 'number', help: 'decoupled weight decay (tensors of 2+ dims)', default: 0.01 },
  clip: { type: 'number', help: 'global gradient-norm clip (0 = off)', default: 0 },
  device: { type: 'string', help: DEVICE_NAMES.join(' | ') + ' (cuda-interpret: the CUDA kernels on the CPU, slow)', default: 'cpu' },
  threads: { type: 'number', help: 'CPU threads (default: all cores)' },
  help: { type: 'boolean', help: 'show this help' },
};

export async function run(argv: string[]): Promise<number> {
  const { flags, positionals } = parseArgs('forward-backward', argv, FLAGS);
  if (flags.help) {
    process.stdout.write(usage('forward-backward', '--model DIR --batch FILE --out FILE [flags]', FLAGS) + '\n');
    return 0;
  }
  if (positionals.length) throw new UsageError(`forward-backward: unexpected argument '${positionals[0]}'`);
  for (const k of ['model', 'batch', 'out'])
    if (!flags[k]) throw new UsageError(`forward-backward: --${k} is required\n${usage('forward-backward', '--model DIR --batch FILE --out FILE [flags]', FLAGS)}`);
  const steps = flags['train-steps'] as number;
  if (!Number.isInteger(steps) || steps < 0) throw new UsageError(`forward-backward: --train-steps must be a whole number >= 0, got ${steps}`);
  const modelDir = flags.model as string;
  const hf = openHfModel(modelDir);
  let tensors: ReturnType<typeof forwardBackward>;
  try {
    const batchFile = readSafetensors(flags.batch as string);
    try {
      for (const name of ['input_ids', 'labels'])
        if (!batchFile.has(name)) throw new Error(`${flags.batch}: no tensor '${name}'; the batch file needs int64 input_ids and labels of shape [batch, seq]`);
      const shape = batchFile.info('input_ids').shape;
      const lshape = batchFile.info('labels').shape;
      if (shape.length !== 2 || lshape.length !== 2 || shape[0] !== lshape[0] || shape[1] !== lshape[1])
        throw new Error(`${flags.batch}: input_ids ${JSON.stringify(shape)} and labels ${JSON.stringify(lshape)} must both be [batch, seq]`);
      const [batch, seq] = shape as [number, number];
      const be = createBackend(parseDevice(flags.device as string));
      if (flags.threads !== undefined) be.setThreads(flags.threads as number);
      tensors = forwardBackward(
        be, hf.config, hf.tensors, modelDir, batchFile.toInt32('input_ids'), batchFile.toInt32('labels'), batch, seq,
        {
          trainSteps: steps,
          optim: {
            lr: flags.lr as number, beta1: flags.beta1 as number, beta2: flags.beta2 as number, eps: flags.eps as number,
            weightDecay: flags['weight-decay'] as number, clip: flags.clip as number,
          },
        },
      );
    } finally {
      batchFile.close();
    }
  } finally {
    hf.close(); // no file stays open, whatever failed
  }
  writeSafetensors(flags.out as string, tensors);
  return 0;
}
