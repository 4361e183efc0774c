import { release as osRelease } from 'node:os';
import { readRunningBuildIds } from '../capture/build_ids.js';
import { Symbolizer } from '../symbols/symbolizer.js';
import type { CommandContext } from './context.js';

/** `--symbols PATH` (repeatable), shared by every command that prints kernel stacks. */
export const SYMBOLS_OPTION = {
  symbols: {
    type: 'string',
    multiple: true,
    valueName: 'PATH',
    description:
      'resolve frames to file:line from this vmlinux, .ko, or directory of them (a build tree; repeatable)',
  },
} as const;

export interface SymbolizerSetup {
  /** --symbols values. */
  paths: readonly string[] | undefined;
  /** Kernel release whose standard places (/usr/lib/debug, /lib/modules/R/build) are searched too. */
  kernelRelease?: string | undefined;
  /** The frames come from this machine now: check files against the running build-ids. */
  running: boolean;
}

/** A symbolizer whose warnings go to stderr, one line each. */
export async function openSymbolizer(setup: SymbolizerSetup, ctx: CommandContext): Promise<Symbolizer> {
  const opts: import('../symbols/symbolizer.js').SymbolizerOptions = {
    paths: setup.paths ?? [],
    onWarning: (m) => ctx.stderr.write(`memsleuth: warning: ${m}\n`),
  };
  const release = setup.kernelRelease ?? (setup.running ? osRelease() : undefined);
  if (release) opts.kernelRelease = release;
  if (setup.running) opts.buildIds = await readRunningBuildIds();
  return Symbolizer.create(opts);
}
