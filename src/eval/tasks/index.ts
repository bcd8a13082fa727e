/** Every task by name (the names lm-evaluation-harness uses), and the check that a file belongs to its task. */
import { EvalDataError, type Row } from '../rows.js';
import type { TaskDef } from '../task.js';
import { arcChallenge, arcEasy } from './arc.js';
import { hellaswag } from './hellaswag.js';
import { lambadaOpenai } from './lambada.js';
import { mc } from './mc.js';
import { mcTokens } from './mc-tokens.js';
import { piqa } from './piqa.js';
import { winogrande } from './winogrande.js';

export const TASKS: ReadonlyMap<string, TaskDef> = new Map(
  [hellaswag, arcEasy, arcChallenge, piqa, winogrande, lambadaOpenai, mc, mcTokens].map((t) => [t.name, t]),
);

const ALIASES: Readonly<Record<string, string>> = { lambada: 'lambada_openai', 'arc-easy': 'arc_easy', 'arc-challenge': 'arc_challenge' };

export function getTask(name: string): TaskDef {
  const t = TASKS.get(ALIASES[name] ?? name);
  if (!t) throw new EvalDataError(`unknown task '${name}'; tasks: ${[...TASKS.keys()].join(', ')}`);
  return t;
}

/**
 * A row missing one of the task's fields: if it has every field of another task, the file is that task's (the
 * usual mistake), and the error says so; otherwise it names the missing field.
 */
export function checkRowFields(task: TaskDef, row: Row, at: string): void {
  const missing = task.fields.find((k) => !(k in row.fields));
  if (missing === undefined) return;
  const other = [...TASKS.values()].find((t) => t !== task && t.fields.every((k) => k in row.fields));
  const have = Object.keys(row.fields).slice(0, 8).join(', ');
  if (other)
    throw new EvalDataError(`${at}: no field '${missing}' for task ${task.name}: this looks like a ${other.name} file (fields ${have}); pass --task ${other.name}`);
  throw new EvalDataError(`${at}: no field '${missing}' for task ${task.name} (the row has ${have || 'no fields'}); ${task.name} rows need ${task.fields.join(', ')}`);
}
