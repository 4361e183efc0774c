import { collectorScript } from '../../capture/collector.js';
import { defineCommand } from '../command.js';
import { VERSION } from '../version.js';

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
    ctx.stdout.write(await collectorScript(VERSION));
    return 0;
  },
});
