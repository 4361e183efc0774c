import { readFileSync } from 'node:fs';
import { Exporter } from '../../metrics/exporter.js';
import { isLoopback, parseListen, serveExporter, writeTextfile } from '../../metrics/server.js';
import { MemsleuthError } from '../../model/errors.js';
import { formatBytes, parseDuration } from '../../model/units.js';
import {
  DEFAULT_NODE_FAMILIES,
  type MetricsOptions,
  NODE_FAMILIES,
  type NodeFamily,
} from '../../registry/index.js';
import { defineCommand, numberOption } from '../command.js';
import type { CommandContext } from '../context.js';
import { VERSION } from '../version.js';

/** `--node-families meminfo,vmstat`, `all` or `none`. */
function nodeFamilies(text: string): Set<NodeFamily> {
  if (text.trim() === 'none') return new Set();
  if (text.trim() === 'all') return new Set(NODE_FAMILIES);
  const out = new Set<NodeFamily>();
  for (const w of text.split(',').map((x) => x.trim())) {
    if (!(NODE_FAMILIES as readonly string[]).includes(w))
      throw new MemsleuthError('USAGE', `--node-families: unknown family ${JSON.stringify(w)}`, {
        hint: `one or more of ${NODE_FAMILIES.join(',')}, all or none`,
      });
    out.add(w as NodeFamily);
  }
  return out;
}

function topOption(value: string | undefined, name: string, fallback: number): number {
  if (value === 'all') return Number.POSITIVE_INFINITY;
  return numberOption(value, name, fallback, { min: 0, integer: true });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

function costLine(e: Exporter): string {
  const l = e.last;
  if (!l) return '';
  return `${l.series} series, ${formatBytes(l.bytes)}, read in ${l.wallMs.toFixed(0)} ms (${l.cpuMs.toFixed(0)} ms CPU)`;
}

export const exporterCommand = defineCommand({
  path: ['exporter'],
  summary: 'serve this machine’s memory (or a snapshot directory) as Prometheus metrics',
  options: {
    listen: {
      type: 'string',
      valueName: 'HOST:PORT',
      description: 'where to serve /metrics (default 127.0.0.1:9935)',
    },
    snapshot: {
      type: 'string',
      valueName: 'DIR',
      description: 'read a snapshot directory, re-read at every snapshot, instead of this machine',
    },
    interval: {
      type: 'string',
      short: 'i',
      valueName: 'DUR',
      description: 'at most one snapshot per DUR; scrapes in between get the cached one (default 10s)',
    },
    textfile: {
      type: 'string',
      valueName: 'DIR',
      description: "write DIR/memsleuth.prom every --interval for node_exporter's textfile collector",
    },
    once: { type: 'boolean', description: 'one snapshot: print it (or write the textfile) and exit' },
    duration: { type: 'string', valueName: 'DUR', description: 'stop after DUR (default: until Ctrl-C)' },
    db: {
      type: 'string',
      valueName: 'FILE',
      description: 'export the current leak suspects of this recording (read-only)',
    },
    'leak-top': {
      type: 'string',
      valueName: 'N',
      description: 'suspects with series of their own (default 25)',
    },
    processes: {
      type: 'string',
      valueName: 'N|all',
      description: 'processes with series of their own, by resident+swap (default 20)',
    },
    pss: { type: 'boolean', description: 'PSS and USS of the listed processes (smaps_rollup; costly)' },
    smaps: {
      type: 'boolean',
      description: 'per-mapping smaps of the listed processes: PSS, USS and the four memory types (costlier)',
    },
    'vmalloc-top': {
      type: 'string',
      valueName: 'N',
      description: 'vmalloc callers with series (default 20)',
    },
    'allocinfo-top': {
      type: 'string',
      valueName: 'N',
      description: 'allocinfo call sites with series (default 20)',
    },
    'kmemleak-top': {
      type: 'string',
      valueName: 'N',
      description: 'kmemleak callers with series (default 10)',
    },
    'no-kmemleak': { type: 'boolean', description: 'do not read /sys/kernel/debug/kmemleak' },
    pagetypeinfo: {
      type: 'boolean',
      description: 'also read /proc/pagetypeinfo (walks the free lists under the zone lock)',
    },
    'node-families': {
      type: 'string',
      valueName: 'LIST',
      description: `node_exporter families under its names: ${NODE_FAMILIES.join(',')}, all or none (default ${[...DEFAULT_NODE_FAMILIES].join(',')}; with --textfile none)`,
    },
    'vmstat-fields': {
      type: 'string',
      valueName: 'REGEX',
      description:
        "vmstat fields as node_vmstat_* (default node_exporter's ^(oom_kill|pgpg|pswp|pg.*fault).*)",
    },
    'token-file': {
      type: 'string',
      valueName: 'FILE',
      description: 'require `Authorization: Bearer <token>` (needed beyond loopback)',
    },
  },
  details:
    'Names shared with node_exporter are node_exporter’s own (node_memory_<Field>_bytes, node_vmstat_*,\n' +
    'node_buddyinfo_blocks, node_slabinfo_*); memsleuth’s are memsleuth_*: the accounting layers with the\n' +
    'unaccounted remainder, slab bytes per cache, vmalloc per caller, allocinfo per call site, kmemleak\n' +
    'counts, processes’ memory types, leak suspects. Every list is bounded: see docs/fleet.md.\n' +
    'With --textfile on a host that runs node_exporter, its meminfo and vmstat families are left to it\n' +
    '(the default there is --node-families none: two collectors must not emit one series).',
  async run({ values }, ctx) {
    const textfile = values.textfile;
    const metrics: MetricsOptions = {
      nodeFamilies: nodeFamilies(
        values['node-families'] ?? (textfile ? 'none' : [...DEFAULT_NODE_FAMILIES].join(',')),
      ),
      processTop: topOption(values.processes, 'processes', 20),
      vmallocTop: topOption(values['vmalloc-top'], 'vmalloc-top', 20),
      allocinfoTop: topOption(values['allocinfo-top'], 'allocinfo-top', 20),
      kmemleakTop: topOption(values['kmemleak-top'], 'kmemleak-top', 10),
      kmemleak: !values['no-kmemleak'],
      processDetail: values.smaps ? 'smaps' : values.pss ? 'pss' : 'status',
      pagetypeinfo: Boolean(values.pagetypeinfo),
    };
    if (values['vmstat-fields'] !== undefined) {
      try {
        metrics.vmstatFields = new RegExp(values['vmstat-fields']);
      } catch (e) {
        throw new MemsleuthError('USAGE', `--vmstat-fields: ${(e as Error).message}`);
      }
    }
    const intervalMs = parseDuration(values.interval ?? '10s', 'interval');
    const durationMs = values.duration === undefined ? undefined : parseDuration(values.duration, 'duration');
    let token: string | undefined;
    if (values['token-file'] !== undefined) {
      try {
        token = readFileSync(values['token-file'], 'utf8').trim();
      } catch (e) {
        throw new MemsleuthError('IO', `--token-file ${values['token-file']}: ${(e as Error).message}`);
      }
      if (!token) throw new MemsleuthError('USAGE', `--token-file ${values['token-file']}: empty`);
    }
    const exporter = new Exporter({
      snapshotDir: values.snapshot,
      intervalMs,
      metrics,
      db: values.db,
      leakTop: numberOption(values['leak-top'], 'leak-top', 25, { min: 0, integer: true }),
      version: VERSION,
      onProblem: (source, message) => ctx.stderr.write(`  not exported: ${source}: ${message}\n`),
    });
    const origin = values.snapshot ?? 'this machine';

    if (values.once) {
      const text = await exporter.scrape();
      if (textfile) {
        const file = await writeTextfile(textfile, text);
        ctx.stderr.write(`wrote ${file}: ${costLine(exporter)}\n`);
      } else ctx.stdout.write(text);
      return 0;
    }

    const ac = new AbortController();
    const stop = () => ac.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const timer = durationMs === undefined ? undefined : setTimeout(stop, durationMs);
    try {
      if (textfile) return await runTextfile(exporter, textfile, intervalMs, ac.signal, ctx, origin);
      const { host, port } = parseListen(values.listen ?? '127.0.0.1:9935');
      if (token && !isLoopback(host))
        ctx.stderr.write(`warning: listening on ${host}, beyond loopback; scrapers need the token\n`);
      const server = await serveExporter(exporter, { host, port, ...(token ? { token } : {}) });
      try {
        // One snapshot up front: problems and the cost show at start, not at the first scrape.
        await exporter.scrape();
        ctx.stderr.write(
          `serving ${server.url}/metrics (${origin}, at most one snapshot per ${intervalMs / 1000} s); Ctrl-C stops\n` +
            `first snapshot: ${costLine(exporter)}\n`,
        );
        await new Promise<void>((resolve) => {
          if (ac.signal.aborted) resolve();
          else ac.signal.addEventListener('abort', () => resolve(), { once: true });
        });
      } finally {
        await server.close();
      }
      return 0;
    } finally {
      if (timer) clearTimeout(timer);
      process.removeListener('SIGINT', stop);
      process.removeListener('SIGTERM', stop);
    }
  },
});

async function runTextfile(
  exporter: Exporter,
  dir: string,
  intervalMs: number,
  signal: AbortSignal,
  ctx: CommandContext,
  origin: string,
): Promise<number> {
  const start = Date.now();
  for (let k = 0; !signal.aborted; k++) {
    const file = await writeTextfile(dir, await exporter.scrape());
    if (k === 0)
      ctx.stderr.write(
        `writing ${file} every ${intervalMs / 1000} s (${origin}); Ctrl-C stops\nfirst snapshot: ${costLine(exporter)}\n`,
      );
    // A fixed schedule: a slow snapshot does not shift the next ones.
    await sleep(Math.max(0, start + (k + 1) * intervalMs - Date.now()), signal);
  }
  return 0;
}
