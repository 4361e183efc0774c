import { closeSync, openSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { parseSortArgv, runPageOwnerSort, type SortCompat, sortUsage } from '../../analysis/page_owner_sort.js';
import { MemsleuthError } from '../../errors.js';
import type { PageOwnerInput } from '../../sources/page_owner.js';
import { defineCommand } from '../command.js';
import { type CommandContext, progress } from '../context.js';

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  EISDIR: 'Is a directory',
  ENOTDIR: 'Not a directory',
  EROFS: 'Read-only file system',
  ENOSPC: 'No space left on device',
  ELOOP: 'Too many levels of symbolic links',
  ENAMETOOLONG: 'File name too long',
  EMFILE: 'Too many open files',
  ENXIO: 'No such device or address',
  ETXTBSY: 'Text file busy',
};

/** `-` is standard input; anything else a path (a file, a FIFO or debugfs). */
export function inputOf(arg: string, ctx: CommandContext): PageOwnerInput {
  return arg === '-' ? (ctx.stdin as unknown as Readable) : arg;
}

function rate(bytes: number, t0: number): string {
  const s = (Date.now() - t0) / 1000;
  return s > 0 ? `${(bytes / 1e6 / s).toFixed(0)} MB/s` : '';
}

/** Progress line for streamed reads: bytes, records, rate. */
export function streamProgress(ctx: CommandContext, what: string) {
  const p = progress(ctx);
  const t0 = Date.now();
  return {
    update: (x: { bytes: number; blocks: number }) =>
      p.update(`${what}: ${(x.bytes / 1e6).toFixed(0)} MB, ${x.blocks} records, ${rate(x.bytes, t0)}`),
    done: () => p.done(),
  };
}

const pageOwnerSortDetails =
  'Takes exactly the options of tools/mm/page_owner_sort (6.7+) and writes the same bytes;\n' +
  '`--compat 6.1` (first argument) switches to tools/vm/page_owner_sort of 5.18-6.6\n' +
  '(-r, -f, --cull free, --sort ft, timestamps kept). `-` reads stdin / writes stdout;\n' +
  'pipes and /sys/kernel/debug/page_owner work directly; records have no size limit.\n';

export const pageOwnerSortCommand = defineCommand({
  path: ['page-owner', 'sort'],
  summary: 'sort and cull a page_owner dump: a drop-in for the kernel\'s page_owner_sort',
  args: '<input> <output>',
  options: {},
  rawArgs: true,
  details: pageOwnerSortDetails,
  async run({ rawArgs }, ctx) {
    let args = rawArgs;
    let compat: SortCompat = '6.12';
    if (args[0] === '--compat' || args[0]?.startsWith('--compat=')) {
      const v = args[0].includes('=') ? args[0].slice('--compat='.length) : args[1];
      if (v !== '6.1' && v !== '6.12') {
        throw new MemsleuthError('USAGE', `--compat: expected 6.1 or 6.12, found ${JSON.stringify(v ?? '')}`, {
          hint: '6.1 follows tools/vm/page_owner_sort.c (5.18-6.6), 6.12 tools/mm (6.7+)',
        });
      }
      compat = v;
      args = args.slice(args[0].includes('=') ? 1 : 2);
    }
    if (args.length === 1 && (args[0] === '--help' || args[0] === '-h')) {
      ctx.stdout.write(
        'Usage: memsleuth page-owner sort [--compat 6.1|6.12] [OPTIONS] <input> <output>\n\n' +
          `${pageOwnerSortDetails}\n`,
      );
      return 0;
    }
    const argv0 = ctx.env.MEMSLEUTH_ARGV0 ?? 'memsleuth page-owner sort';
    const parsed = parseSortArgv(args, compat, argv0);
    if (!parsed.ok) {
      ctx.stdout.write(parsed.stdout);
      ctx.stderr.write(parsed.stderr);
      return parsed.status;
    }
    const cfg = parsed.config;
    const toStdout = cfg.output === '-';
    // The C tool opens both files before reading anything (so the output is created
    // even when the input is missing) and reports the last failure with perror().
    let inErr: NodeJS.ErrnoException | undefined;
    let outErr: NodeJS.ErrnoException | undefined;
    let input: PageOwnerInput = inputOf(cfg.input, ctx);
    if (cfg.input !== '-') {
      try {
        const fh = await open(cfg.input, 'r');
        const st = await fh.stat();
        await fh.close();
        if (st.isDirectory()) input = (async function* () {})();
      } catch (e) {
        inErr = e as NodeJS.ErrnoException;
      }
    }
    let fd = 1;
    if (!toStdout) {
      try {
        fd = openSync(cfg.output, 'w');
      } catch (e) {
        outErr = e as NodeJS.ErrnoException;
      }
    }
    if (inErr || outErr) {
      if (fd !== 1) closeSync(fd);
      const err = (outErr ?? inErr)!;
      ctx.stdout.write(sortUsage(compat));
      ctx.stderr.write(`open: : ${ERRNO_TEXT[err.code ?? ''] ?? err.message}\n`);
      return 1;
    }
    const prog = streamProgress(ctx, 'page-owner sort');
    let pending = '';
    try {
      await runPageOwnerSort(cfg, input, {
        // With the output on stdout the C tool's "loaded N" lines go to stderr instead.
        progressOut: (s) => {
          if (toStdout) {
            if (!ctx.stderrIsTTY) return;
            ctx.stderr.write(s);
          } else ctx.stdout.write(s);
        },
        errOut: (s) => ctx.stderr.write(s),
        write: (s) => {
          if (toStdout) {
            pending += s;
            if (pending.length >= 1 << 20) {
              ctx.stdout.write(Buffer.from(pending, 'latin1'));
              pending = '';
            }
          } else writeSync(fd, s, null, 'latin1');
        },
        onProgress: prog.update,
      });
    } finally {
      prog.done();
      if (fd !== 1) closeSync(fd);
    }
    if (pending) ctx.stdout.write(Buffer.from(pending, 'latin1'));
    return 0;
  },
});

export const pageOwnerCommands = [pageOwnerSortCommand];
