import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { MemsleuthError } from '../../model/errors.js';
import { symbolizeStream } from '../../symbols/filter.js';
import { defineCommand } from '../command.js';
import { openSymbolizer, SYMBOLS_OPTION } from '../symbols.js';

export const symbolizeCommand = defineCommand({
  path: ['symbolize'],
  summary: 'add file:line (and inlined functions) after every kernel frame in any text',
  args: '[FILE|-]',
  options: {
    ...SYMBOLS_OPTION,
    release: {
      type: 'string',
      valueName: 'R',
      description: 'also look in the standard places for kernel release R (/usr/lib/debug, /lib/modules/R)',
    },
    running: {
      type: 'boolean',
      description: 'check the files against this machine’s running kernel and modules (build-ids)',
    },
    'no-inlines': {
      type: 'boolean',
      description: 'only the frame’s own file:line, not the inlined functions',
    },
  },
  details:
    'A filter: reads FILE (or stdin) and writes it back with ` FILE:LINE (inlined FN FILE:LINE, ...)`\n' +
    'after each frame `func+0x1b8/0x590 [module]` it resolves; everything else passes unchanged, line\n' +
    'by line as it arrives (kmemleak reports, page_owner dumps, dmesg, slab traces, memsleuth output).\n' +
    'Debug info comes from --symbols (vmlinux, .ko, or directories of them, searched in order), then\n' +
    '/usr/lib/debug/.build-id, and for --release R (or this machine’s release, without --symbols or with\n' +
    '--running) /usr/lib/debug/boot/vmlinux-R, /lib/modules/R/build/vmlinux, /boot/vmlinux-R and the\n' +
    'modules under /usr/lib/debug/lib/modules/R and /lib/modules/R. Without --symbols (or with\n' +
    '--running) the frames are taken to be this machine’s and files are chosen by its running\n' +
    'build-ids; build-ids printed in the text (`[mod <build-id>]`) always count. A frame whose length\n' +
    'does not match its file rejects the file (another build): the next candidate is tried, else the\n' +
    'frame is left as it is, with a warning. Needs eu-addr2line (elfutils).',
  async run({ values, positionals }, ctx) {
    const arg = positionals[0];
    let input: AsyncIterable<Buffer | string>;
    if (arg === undefined || arg === '-') input = ctx.stdin as AsyncIterable<Buffer | string>;
    else {
      try {
        if ((await stat(arg)).isDirectory())
          throw new MemsleuthError('USAGE', `${arg} is a directory`, {
            hint: 'symbolize reads text: a saved kmemleak report, page_owner dump, dmesg, ...',
          });
      } catch (e) {
        if (e instanceof MemsleuthError) throw e;
        throw new MemsleuthError('IO', `${arg}: cannot open (${(e as NodeJS.ErrnoException).code})`, {
          file: arg,
        });
      }
      input = createReadStream(arg);
    }
    const paths = values.symbols ?? [];
    const symbolizer = await openSymbolizer(
      { paths, kernelRelease: values.release, running: Boolean(values.running) || paths.length === 0 },
      ctx,
    );
    try {
      const r = await symbolizeStream(
        input,
        (text) =>
          new Promise<void>((resolve) => {
            if (ctx.stdout.write(text)) resolve();
            else ctx.stdout.once('drain', resolve);
          }),
        symbolizer,
        { inlines: !values['no-inlines'] },
      );
      if (r.frames > r.resolved)
        ctx.stderr.write(`memsleuth: symbolize: ${r.resolved} of ${r.frames} frames resolved\n`);
    } finally {
      await symbolizer.close();
    }
    return 0;
  },
});
