import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { errnoReason, MemsleuthError } from '../model/errors.js';
import { formatBytes } from '../model/units.js';
import { pageHtml } from '../web/html.js';
import type { PageData } from '../web/types.js';
import type { CommandContext } from './context.js';

/** `--html FILE`: the self-contained page; its path and size on stderr (stdout keeps the data). */
export async function writeHtml(file: string, data: PageData, ctx: CommandContext): Promise<void> {
  const text = pageHtml(data);
  const path = resolve(ctx.cwd, file);
  try {
    await writeFile(path, text);
  } catch (e) {
    throw new MemsleuthError('IO', `${file}: cannot write (${errnoReason(e)})`, { file });
  }
  ctx.stderr.write(`wrote ${path} (${formatBytes(Buffer.byteLength(text))})\n`);
}
