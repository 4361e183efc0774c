/**
 * The build-ids of the running kernel and its loaded modules, which tell whether a
 * vmlinux or .ko on disk is the code that runs: /sys/kernel/notes holds the kernel's note
 * section, /sys/module/<m>/notes/.note.gnu.build-id each module's (sysfs, root not
 * needed; absent for built-in "modules" that have only parameters).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildIdOf, parseElfNotes } from '../sources/elf_notes.js';

export interface RunningBuildIds {
  kernel?: string;
  /** Module name -> build-id. */
  modules: Map<string, string>;
}

async function buildIdFile(path: string): Promise<string | undefined> {
  try {
    return buildIdOf(parseElfNotes(await readFile(path), { file: path }));
  } catch {
    return undefined; // absent (no CONFIG_*, not a loadable module) or unreadable: unknown
  }
}

/** Read what this machine exposes; missing files leave the ids unknown, never an error. */
export async function readRunningBuildIds(opts: { sysRoot?: string } = {}): Promise<RunningBuildIds> {
  const sys = opts.sysRoot ?? '/sys';
  const out: RunningBuildIds = { modules: new Map() };
  const kernel = await buildIdFile(join(sys, 'kernel', 'notes'));
  if (kernel) out.kernel = kernel;
  let names: string[] = [];
  try {
    names = await readdir(join(sys, 'module'));
  } catch {
    return out;
  }
  await Promise.all(
    names.map(async (m) => {
      const id = await buildIdFile(join(sys, 'module', m, 'notes', '.note.gnu.build-id'));
      if (id) out.modules.set(m, id);
    }),
  );
  return out;
}
