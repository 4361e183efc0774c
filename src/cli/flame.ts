import { writeFile } from 'node:fs/promises';
import { type StackGroup, toCollapsed, toSpeedscope, type WeightName } from '../analysis/stacks.js';
import type { CommandContext } from './context.js';

/** `--collapsed FILE` / `--speedscope FILE` (`-` for stdout) on every command that groups stacks. */
export const FLAME_OPTIONS = {
  collapsed: {
    type: 'string',
    valueName: 'FILE',
    description: 'write collapsed stacks (flamegraph.pl, inferno) to FILE, - for stdout',
  },
  speedscope: {
    type: 'string',
    valueName: 'FILE',
    description: 'write a speedscope profile to FILE, - for stdout',
  },
} as const;

/**
 * The output asked for is every group (`--json`, `--html`, a flame-graph export), not the rows
 * of a table: a command that can build only the groups it prints builds them all.
 */
export function writesEveryGroup(values: {
  json?: boolean;
  html?: string;
  collapsed?: string;
  speedscope?: string;
}): boolean {
  return (
    Boolean(values.json) ||
    values.html !== undefined ||
    values.collapsed !== undefined ||
    values.speedscope !== undefined
  );
}

/**
 * Write the flame-graph exports asked for, weighted by `by` (pages for page_owner, bytes for
 * the rest). True when one went to stdout, so the command prints nothing else.
 */
export async function writeFlameExports(
  groups: readonly StackGroup[],
  values: { collapsed?: string; speedscope?: string },
  name: string,
  ctx: CommandContext,
  by: WeightName = 'bytes',
): Promise<boolean> {
  const outputs: [string | undefined, () => string][] = [
    [values.collapsed, () => toCollapsed(groups, by)],
    [values.speedscope, () => `${JSON.stringify(toSpeedscope(groups, by, name))}\n`],
  ];
  let toStdout = false;
  for (const [target, render] of outputs) {
    if (target === undefined) continue;
    if (target === '-') {
      ctx.stdout.write(render());
      toStdout = true;
    } else await writeFile(target, render());
  }
  return toStdout;
}
