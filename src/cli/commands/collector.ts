import { collectorScript } from '../../capture/collector.js';
import { MemsleuthError } from '../../model/errors.js';
import { parseDuration } from '../../model/units.js';
import { defineCommand, numberOption } from '../command.js';
import { VERSION } from '../version.js';

export const collectorCommand = defineCommand({
  path: ['collector'],
  summary: 'print a POSIX sh capture script for machines without Node (busybox is enough)',
  options: {
    interval: {
      type: 'string',
      short: 'i',
      valueName: 'DUR',
      description: 'print a script that captures every DUR (10m, 1h; whole seconds) into a directory',
    },
    count: {
      type: 'string',
      short: 'n',
      valueName: 'N',
      description: 'with --interval: stop after N captures (default: until stopped)',
    },
    keep: {
      type: 'string',
      valueName: 'N',
      description: 'with --interval: keep only the newest N captures on disk (default 144)',
    },
  },
  details:
    'Save it, copy it to the machine and run it as root; then analyse the result here:\n' +
    '  memsleuth collector > collect.sh\n' +
    '  sh collect.sh -o snap -z            # on the device: writes snap.tar.gz\n' +
    '  memsleuth report snap.tar.gz\n' +
    'Periodic capture, for leaks over hours on the device:\n' +
    '  memsleuth collector --interval 10m --keep 144 > collect.sh\n' +
    '  nohup sh collect.sh -o /var/tmp/msl &   # DIR/<UTC time>.tar.gz every 10 minutes\n' +
    '  memsleuth record --from /var/tmp/msl --db msl.db && memsleuth leaks --db msl.db\n' +
    'Disk use is bounded by count: only the newest --keep captures stay (each is a bundle, about\n' +
    'the size `memsleuth snapshot` writes); --count N stops after N captures.\n' +
    'It writes the same layout and manifest as `memsleuth snapshot` and is read-only unless\n' +
    'given --kmemleak-scan. Run `sh collect.sh --help` for its options.',
  async run({ values }, ctx) {
    if (values.interval === undefined) {
      if (values.count !== undefined || values.keep !== undefined)
        throw new MemsleuthError('USAGE', '--count and --keep need --interval', {
          hint: 'memsleuth collector --interval 10m --count 144',
        });
      ctx.stdout.write(await collectorScript(VERSION));
      return 0;
    }
    const ms = parseDuration(values.interval, 'interval');
    if (ms < 1000 || ms % 1000 !== 0)
      throw new MemsleuthError('USAGE', `--interval ${values.interval}: whole seconds, at least 1s`, {
        hint: 'busybox sleep counts whole seconds: --interval 10m',
      });
    const count = numberOption(values.count, 'count', 0, { min: 1, integer: true });
    const keep = numberOption(values.keep, 'keep', 144, { min: 1, integer: true });
    ctx.stdout.write(
      await collectorScript(VERSION, { everySeconds: ms / 1000, ...(values.count ? { count } : {}), keep }),
    );
    return 0;
  },
});
