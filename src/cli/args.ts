/** A small, strict argument parser shared by every verb: unknown flags are errors, never ignored. */

export interface FlagSpec {
  /** 'string' takes a value, 'number' a numeric value, 'boolean' none, 'list' one or more values until the next flag. */
  type: 'string' | 'number' | 'boolean' | 'list';
  help: string;
  default?: string | number | boolean | string[];
}

export interface Parsed {
  flags: Record<string, string | number | boolean | string[] | undefined>;
  positionals: string[];
}

export class UsageError extends Error {}

export function parseArgs(verb: string, argv: string[], spec: Record<string, FlagSpec>): Parsed {
  const flags: Parsed['flags'] = {};
  for (const [k, s] of Object.entries(spec)) if (s.default !== undefined) flags[k] = s.default;
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--') || a === '--') {
      positionals.push(a);
      continue;
    }
    let name = a.slice(2);
    let inline: string | undefined;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      inline = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const s = spec[name];
    if (!s) {
      const known = Object.keys(spec).map((k) => `--${k}`).join(', ');
      throw new UsageError(`${verb}: unknown flag --${name}. Known flags: ${known || '(none)'}`);
    }
    if (s.type === 'boolean') {
      const v = inline?.toLowerCase();
      if (v === undefined || ['1', 'true', 'yes', 'on'].includes(v)) flags[name] = true;
      else if (['0', 'false', 'no', 'off'].includes(v)) flags[name] = false;
      else throw new UsageError(`${verb}: --${name} takes no value, or =true / =false; got '--${name}=${inline}'`);
      continue;
    }
    if (s.type === 'list') {
      const vals: string[] = inline !== undefined ? [inline] : [];
      while (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) vals.push(argv[++i]!);
      if (vals.length === 0) throw new UsageError(`${verb}: --${name} needs at least one value`);
      const prev = flags[name];
      flags[name] = Array.isArray(prev) && prev !== s.default ? [...prev, ...vals] : vals;
      continue;
    }
    const v = inline ?? argv[++i];
    if (v === undefined) throw new UsageError(`${verb}: --${name} needs a value`);
    if (s.type === 'number') {
      const x = Number(v);
      if (!Number.isFinite(x)) throw new UsageError(`${verb}: --${name} expects a number, got '${v}'`);
      flags[name] = x;
    } else flags[name] = v;
  }
  return { flags, positionals };
}

export function usage(verb: string, synopsis: string, spec: Record<string, FlagSpec>): string {
  const lines = [`usage: lmforge ${verb} ${synopsis}`];
  for (const [k, s] of Object.entries(spec)) {
    const d = s.default !== undefined ? ` (default ${JSON.stringify(s.default)})` : '';
    lines.push(`  --${k.padEnd(16)} ${s.help}${d}`);
  }
  return lines.join('\n');
}
