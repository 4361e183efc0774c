import { createRequire } from 'node:module';
import type { ParseArgsConfig } from 'node:util';
import { MemsleuthError } from '../model/errors.js';
import type { ParseSettings } from '../sources/text.js';
import type { CommandContext } from './context.js';

// Node's built-ins through require, not `import`, on the everyday commands' start-up path: for an
// ES import Node builds a module that reads every export of the built-in, lazy getters too
// (node:fs's ReadStream loads Node's twenty stream modules): 1.3-3 ms of a 50 ms `ps`.
const nodeRequire = createRequire(import.meta.url);
const { parseArgs } = nodeRequire('node:util') as typeof import('node:util');

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;

/** One option: parseArgs config plus the help text. The table is data. */
export type OptionSpec = OptionsConfig[string] & { description: string; valueName?: string };

export interface CommandSpec<O extends Record<string, OptionSpec> = Record<string, OptionSpec>> {
  /** Words that select it, e.g. `['page-owner', 'sort']`. */
  path: string[];
  summary: string;
  /** Positional arguments for the usage line, e.g. `[SNAPSHOT]`. */
  args?: string;
  options: O;
  /** Extra help text after the options. */
  details?: string;
  /** Returns the exit code. Throws MemsleuthError for user errors. */
  run(
    input: { values: ParsedValues<O>; positionals: string[]; rawArgs: string[] },
    ctx: CommandContext,
  ): Promise<number>;
  /** Commands that parse their own argv (drop-ins for other tools). */
  rawArgs?: boolean;
}

export type ParsedValues<O extends Record<string, OptionSpec>> = {
  [K in keyof O]?: O[K]['type'] extends 'boolean'
    ? O[K]['multiple'] extends true
      ? boolean[]
      : boolean
    : O[K]['multiple'] extends true
      ? string[]
      : string;
};

/** Identity helper that keeps the option table's literal types. */
export function defineCommand<O extends Record<string, OptionSpec>>(spec: CommandSpec<O>): CommandSpec<O> {
  return spec;
}

export function parseCommandArgs<O extends Record<string, OptionSpec>>(
  spec: CommandSpec<O>,
  argv: string[],
): { values: ParsedValues<O>; positionals: string[] } {
  const options: OptionsConfig = {};
  for (const [name, o] of Object.entries(spec.options)) {
    const { description: _d, valueName: _v, ...cfg } = o;
    options[name] = cfg;
  }
  let positionals: string[];
  let values: ParsedValues<O>;
  try {
    const r = parseArgs({
      args: joinNegativeValues(argv, spec.options),
      options,
      allowPositionals: true,
      strict: true,
    });
    positionals = r.positionals;
    values = r.values as ParsedValues<O>;
  } catch (e) {
    throw new MemsleuthError('USAGE', (e as Error).message.replace(/\. To specify.*$/s, ''), {
      hint: `see \`memsleuth ${spec.path.join(' ')} --help\``,
    });
  }
  // Arguments beyond those the usage line names are an error, not ignored (`record x.db` had
  // recorded into the default database).
  const max = maxPositionals(spec.args);
  if (positionals.length > max) {
    const extra = positionals.slice(max).join(' ');
    const help = `see \`memsleuth ${spec.path.join(' ')} --help\``;
    // A process or a file given without its option (`trace user 1234`, `record x.db`).
    const meant = /^\d+$/.test(extra) ? ['pid'] : ['db', 'output'];
    const option = meant.find((name) => spec.options[name]?.type === 'string');
    throw new MemsleuthError(
      'USAGE',
      max === 0
        ? `${spec.path.join(' ')} takes no arguments, got ${extra}`
        : `${spec.path.join(' ')} takes ${spec.args}, got ${positionals.length} arguments (${extra} too many)`,
      {
        hint:
          max === 0 && option !== undefined
            ? `did you mean --${option} ${spec.options[option]!.valueName ?? 'VALUE'}? ${help}`
            : help,
      },
    );
  }
  return { values, positionals };
}

/**
 * How many positional arguments a usage line (`CommandSpec.args`) allows: one per word, any
 * number when a word ends in `...` (`PID... [SNAPSHOT]`), none without a usage line.
 */
export function maxPositionals(args: string | undefined): number {
  if (args === undefined || args.trim() === '') return 0;
  const words = args.trim().split(/\s+/);
  return words.some((w) => /\.\.\.\]?$/.test(w)) ? Number.POSITIVE_INFINITY : words.length;
}

/**
 * `--top -1` as `--top=-1`: parseArgs takes a value starting with `-` for an option and calls
 * it ambiguous; a negative number after an option that takes a value is that value, so the
 * option's own check can say what it expects.
 */
function joinNegativeValues(argv: string[], spec: Record<string, OptionSpec>): string[] {
  const takesValue = new Map<string, string>();
  for (const [name, o] of Object.entries(spec)) {
    if (o.type !== 'string') continue;
    takesValue.set(`--${name}`, name);
    if (o.short) takesValue.set(`-${o.short}`, name);
  }
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const name = takesValue.get(a);
    const next = argv[i + 1];
    if (name !== undefined && next !== undefined && /^-(\d|\.\d)/.test(next)) {
      out.push(`--${name}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

export function commandHelp(spec: CommandSpec): string {
  const lines = [`Usage: memsleuth ${spec.path.join(' ')} [options]${spec.args ? ` ${spec.args}` : ''}`, ''];
  lines.push(spec.summary, '');
  const entries = Object.entries(spec.options);
  if (entries.length) {
    lines.push('Options:');
    const rows = entries.map(([name, o]) => {
      const short = o.short ? `-${o.short}, ` : '    ';
      const val = o.type === 'string' ? ` ${o.valueName ?? 'VALUE'}` : '';
      return [`  ${short}--${name}${val}`, o.description] as const;
    });
    rows.push(['  -h, --help', 'show this help']);
    const w = Math.max(...rows.map((r) => r[0].length)) + 2;
    for (const [l, d] of rows) lines.push(l.padEnd(w) + d);
  }
  if (spec.details) lines.push('', spec.details.trimEnd());
  return `${lines.join('\n')}\n`;
}

/** `--lenient`, in the option table of every command that reads kernel files. */
export const LENIENT_OPTION = {
  lenient: {
    type: 'boolean',
    description: 'read what is complete of a cut (truncated) file: warn, naming what was dropped',
  },
} as const;

/** What `--lenient` passes down to the parsers; the warnings go to stderr. */
export function parseSettingsOf(values: { lenient?: boolean }, ctx: CommandContext): ParseSettings {
  return values.lenient
    ? { lenient: true, onWarning: (m) => ctx.stderr.write(`memsleuth: warning: ${m}\n`) }
    : {};
}

/** Parse a numeric option or throw a usage error naming it. */
export function numberOption(
  value: string | undefined,
  name: string,
  fallback: number,
  opts: { min?: number; integer?: boolean } = {},
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (
    !Number.isFinite(n) ||
    (opts.integer && !Number.isInteger(n)) ||
    (opts.min !== undefined && n < opts.min)
  ) {
    throw new MemsleuthError(
      'USAGE',
      `--${name}: expected a ${opts.integer ? 'whole ' : ''}number${opts.min !== undefined ? ` >= ${opts.min}` : ''}, found ${JSON.stringify(value)}`,
    );
  }
  return n;
}
