import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { MemsleuthError } from '../../model/errors.js';
import { defineCommand } from '../command.js';
import { VERSION } from '../version.js';

/** The shipped POSIX sh collector (package.json "files" includes collector/). */
export const COLLECTOR_PATH = fileURLToPath(
  new URL('../../../collector/memsleuth-collect.sh', import.meta.url),
);

/** The collector script, stamped with this memsleuth's version (its manifests name it). */
export async function collectorScript(): Promise<string> {
  let text: string;
  try {
    text = await readFile(COLLECTOR_PATH, 'utf8');
  } catch (e) {
    throw new MemsleuthError('IO', `cannot read the collector script ${COLLECTOR_PATH}`, {
      file: COLLECTOR_PATH,
      hint: 'the memsleuth installation is incomplete (collector/ missing)',
      cause: e,
    });
  }
  return text.replace(/^MSL_VERSION=.*$/m, `MSL_VERSION=${VERSION}`);
}

export const collectorCommand = defineCommand({
  path: ['collector'],
  summary: 'print a POSIX sh capture script for machines without Node (busybox is enough)',
  options: {},
  details:
    'Save it, copy it to the machine and run it as root; then analyse the result here:\n' +
    '  memsleuth collector > collect.sh\n' +
    '  sh collect.sh -o snap -z            # on the device: writes snap.tar.gz\n' +
    '  memsleuth report snap.tar.gz\n' +
    'It writes the same layout and manifest as `memsleuth snapshot` and is read-only unless\n' +
    'given --kmemleak-scan. Run `sh collect.sh --help` for its options.',
  async run(_input, ctx) {
    ctx.stdout.write(await collectorScript());
    return 0;
  },
});
