/**
 * The kernel lab's captures for tests: one boot per kernel (and parameter set),
 * cached under ~/.cache/memsleuth-lab keyed by kernel config, module source,
 * parameters, collector script and guest init, so every test file shares it and a
 * second `npm test` boots nothing. A missing prerequisite (qemu, linux-source-*,
 * busybox-static) throws: the lab never skips.
 */
import { buildModule, cachedLabRun, type LabRun, type ModuleParams } from '../lab/index.js';
import { cachedOomRun, type OomRun } from '../lab/oom.js';

export type { ExpectedLeaks, LabMoment, LabRun, ModuleParams } from '../lab/index.js';
export {
  DEFAULT_MODULE_PARAMS,
  expectedLeaks,
  kmallocCacheFor,
  LAB_MOMENTS,
  MODULE_ALLOC_SITES,
  MODULE_SOURCE,
  moduleSourceLine,
} from '../lab/index.js';
export type { OomRun } from '../lab/oom.js';

/** How long a test hook may wait for a kernel build (up to 40 min on a loaded 2-core machine) plus a boot. */
export const LAB_HOOK_TIMEOUT_MS = 55 * 60_000;

/**
 * The before/mid/after captures of the lab guest on `kernel`, with msl_leaky's default
 * parameters unless given. Build progress goes to stderr.
 */
export function labCaptures(kernel: '6.1' | '6.12', params: Partial<ModuleParams> = {}): Promise<LabRun> {
  return cachedLabRun(kernel, params, { log: (line) => process.stderr.write(`${line}\n`) });
}

/** msl_leaky.ko as built for a lab run's kernel (cached; with DWARF line tables and inlines). */
export function labModule(run: LabRun): Promise<string> {
  return buildModule(run.kernel);
}

/** The lab's OOM boot on `kernel` (lab/oom.ts), cached like the captures. */
export function labOomRun(kernel: '6.1' | '6.12'): Promise<OomRun> {
  return cachedOomRun(kernel, {
    log: (line) =>
      process.stderr.write(`${line}
`),
  });
}
