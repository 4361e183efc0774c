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

/** The trace-kmem scenario's settings (lab/guest/scenario-trace-kmem.sh). */
export const TRACE_KMEM_SCENARIO = {
  // Faster than the default run: 400 steps in 10 to 30 s under TCG, inside a 60 s trace.
  params: { rate: 40 } as Partial<ModuleParams>,
  // `T` on the TCPv6 cache (busybox nc listens on IPv6): SLUB's trace switch (read-only
  // at run time since 5.9) for the scenario's sockets, the log `memsleuth slab trace --log` reads.
  guest: {
    scenario: 'trace-kmem',
    conf: { TRACE_SECONDS: 60, SLAB_TRACE_SOCKETS: 6 },
    slubDebug: 'U;UT,TCPv6',
  },
};

/** One boot that traces kernel allocations with the collector while msl_leaky runs (cached). */
export function labTraceKmem(kernel: '6.1' | '6.12'): Promise<LabRun> {
  return cachedLabRun(kernel, TRACE_KMEM_SCENARIO.params, {
    guest: TRACE_KMEM_SCENARIO.guest,
    log: (line) => process.stderr.write(`${line}\n`),
  });
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
