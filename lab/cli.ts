/**
 * `npm run lab -- --kernel 6.12 --out DIR [--param rate=100 ...]`: build what is
 * missing, boot the lab guest once and leave the before/mid/after captures in DIR
 * for hands-on use (`memsleuth report DIR/after`). With `--oom`, the OOM boot instead
 * (lab/oom.ts): DIR/console.log holds its OOM-killer reports (`memsleuth oom DIR/console.log`).
 */
import { parseArgs } from 'node:util';
import {
  DEFAULT_MODULE_PARAMS,
  LAB_KERNELS,
  type LabKernelVersion,
  type ModuleParams,
  runLab,
} from './index.js';
import { runOomLab } from './oom.js';

const usage = `Usage: npm run lab -- --kernel 6.1|6.12 --out DIR [--param NAME=VALUE ...] [--timeout SECONDS]
       npm run lab -- --kernel 6.1|6.12 --out DIR --oom [--timeout SECONDS]

--oom boots the OOM scenario (lab/guest/oom.sh: a user-space hog, a memory cgroup, the
module's page leak until the kernel panics) and writes DIR/console.log and DIR/dmesg-user.txt.

Boots a lab kernel under qemu with the msl_leaky module and writes DIR/before, DIR/mid,
DIR/after (snapshot directories), DIR/*.counters (the module's counters), DIR/dmesg.txt
and DIR/console.log. Module parameters (defaults): ${Object.entries(DEFAULT_MODULE_PARAMS)
  .map(([k, v]) => `${k}=${v}`)
  .join(' ')}
`;

async function main(): Promise<number> {
  let values: {
    kernel?: string;
    out?: string;
    param?: string[];
    timeout?: string;
    oom?: boolean;
    help?: boolean;
  };
  try {
    values = parseArgs({
      options: {
        kernel: { type: 'string' },
        out: { type: 'string' },
        param: { type: 'string', multiple: true },
        timeout: { type: 'string' },
        oom: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (e) {
    process.stderr.write(`lab: ${(e as Error).message}\n${usage}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(usage);
    return 0;
  }
  const kernel = values.kernel as LabKernelVersion | undefined;
  if (!kernel || !LAB_KERNELS.includes(kernel) || !values.out) {
    process.stderr.write(`lab: --kernel (${LAB_KERNELS.join(' or ')}) and --out are required\n${usage}`);
    return 2;
  }
  if (values.oom) {
    const run = await runOomLab({
      kernel,
      outDir: values.out,
      timeoutMs: values.timeout ? Number(values.timeout) * 1000 : undefined,
      log: (line) => process.stderr.write(`${line}\n`),
    });
    process.stdout.write(`console\t${run.console}\ndmesg-user\t${run.dmesgUser}\n`);
    return 0;
  }
  const params: Partial<ModuleParams> = {};
  for (const p of values.param ?? []) {
    const m = /^(\w+)=(\d+)$/.exec(p);
    if (!m || !(m[1]! in DEFAULT_MODULE_PARAMS)) {
      process.stderr.write(
        `lab: --param ${p}: expected NAME=NUMBER with NAME one of ${Object.keys(DEFAULT_MODULE_PARAMS).join(', ')}\n`,
      );
      return 2;
    }
    params[m[1] as keyof ModuleParams] = Number(m[2]);
  }
  const run = await runLab({
    kernel,
    outDir: values.out,
    moduleParams: params,
    timeoutMs: values.timeout ? Number(values.timeout) * 1000 : undefined,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  const e = run.expected;
  process.stderr.write(
    `lab: expected leaks: ${e.slabObjects} x ${e.slabObjectBytes} B in ${e.slabCache} (msl_slab_leak), ` +
      `${e.pageBlocks} order-${e.pageOrder} blocks (msl_page_leak), ${e.vmallocAreas} vmalloc areas of ${e.vmallocBytesEach} B (msl_vmalloc_leak)\n`,
  );
  for (const [m, dir] of Object.entries(run.captures)) process.stdout.write(`${m}\t${dir}\n`);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`lab: ${(e as Error).message}\n`);
    process.exitCode = 1;
  },
);
