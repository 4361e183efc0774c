#!/usr/bin/env node
// Symbolization throughput: frames per second of memsleuth's symbolizer (one long-running
// eu-addr2line per file and section, batched, cached) against one eu-addr2line process per
// frame (what a shell loop over addr2line, or decode_stacktrace.sh, does), measured in the
// same run on the same frames: the distinct frames of a lab page_owner dump (6.12 by
// default; the lab's vmlinux and msl_leaky.ko). Also the whole dump through the text filter.
//
//   npm run bench:symbolize [-- --kernel 6.1] [--sample N]
//
// Needs the lab's cached kernel, module and captures (~/.cache/memsleuth-lab: any lab test
// or `npm run lab -- --kernel 6.12` makes them) and eu-addr2line (elfutils).
import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ElfFile } from '../../dist/symbols/elf-file.js';
import { symbolizeStream } from '../../dist/symbols/filter.js';
import { pickSymbol, Symbolizer } from '../../dist/symbols/symbolizer.js';
import { framesInLine } from '../../dist/symbols/text.js';

const { values: args } = parseArgs({
  options: { kernel: { type: 'string', default: '6.12' }, sample: { type: 'string', default: '300' } },
});
const cache = process.env.MEMSLEUTH_LAB_CACHE ?? join(homedir(), '.cache', 'memsleuth-lab');
/** The newest cache entry named prefix-* holding `file`. */
function newest(prefix, file) {
  const hits = readdirSync(cache)
    .filter((d) => d.startsWith(prefix) && existsSync(join(cache, d, file)))
    .map((d) => join(cache, d))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (!hits[0])
    throw new Error(`bench: no ${prefix}*/${file} in ${cache}: run a lab test or npm run lab first`);
  return hits[0];
}
const k = args.kernel;
const tree = newest(`kernel-${k}-`, 'vmlinux');
const dump = join(newest(`captures-${k}-`, 'after/page_owner'), 'after', 'page_owner');

// the distinct frames of the dump
const distinct = new Map();
let total = 0;
for (const line of readFileSync(dump, 'utf8').split('\n')) {
  for (const f of framesInLine(line)) {
    total++;
    distinct.set(line.slice(f.start, f.end), f.frame);
  }
}
const frames = [...distinct.values()];

// the msl_leaky.ko build that ran: the module cache may hold builds of other sources; the
// one whose function lengths fit every module frame of the dump
let moduleDir;
for (const d of readdirSync(cache).filter((x) => x.startsWith(`module-${k}-`))) {
  const ko = join(cache, d, 'msl_leaky.ko');
  if (!existsSync(ko)) continue;
  const table = await (await ElfFile.open(ko)).symbols();
  if (frames.every((f) => f.module !== 'msl_leaky' || pickSymbol(table.lookup(f.func), f)))
    moduleDir = join(cache, d);
}
if (!moduleDir) throw new Error(`bench: no msl_leaky.ko in ${cache}/module-${k}-* fits ${dump}`);
const paths = [tree, moduleDir];
const sample = frames.filter(
  (_, i) => i % Math.max(1, Math.floor(frames.length / Number(args.sample))) === 0,
);

// reference: one eu-addr2line per frame (addresses from the same symbol lookup, not timed)
const files = {
  vmlinux: await ElfFile.open(join(tree, 'vmlinux')),
  msl_leaky: await ElfFile.open(join(moduleDir, 'msl_leaky.ko')),
};
const jobs = [];
for (const f of sample) {
  const elf = files[f.module ?? 'vmlinux'];
  if (!elf) continue;
  const sym = pickSymbol((await elf.symbols()).lookup(f.func), f);
  if (!sym) continue;
  const address = sym.value + BigInt(f.offset) - (f.offset > 0 ? 1n : 0n);
  const args = ['-e', elf.path, '-f', '-i', '-C', '--relative'];
  if (elf.header.type === 'REL') args.push(`--section=${sym.sectionName}`);
  jobs.push([...args, `0x${address.toString(16)}`]);
}
let t = performance.now();
for (const a of jobs) execFileSync('eu-addr2line', a, { encoding: 'utf8' });
const perProcess = jobs.length / ((performance.now() - t) / 1000);

// memsleuth: a fresh symbolizer (ELF symbol tables, process start-up included), same frames
t = performance.now();
const s = await Symbolizer.create({ paths, onWarning: (m) => console.error(`bench: warning: ${m}`) });
const rs = await s.resolveFrames(sample);
await s.close();
const batchedSample = sample.length / ((performance.now() - t) / 1000);
const resolved = rs.filter((r) => r.status === 'resolved').length;

// every distinct frame of the dump, then the whole dump through the filter
t = performance.now();
const s2 = await Symbolizer.create({ paths });
await s2.resolveFrames(frames);
await s2.close();
const batchedAll = frames.length / ((performance.now() - t) / 1000);
t = performance.now();
const s3 = await Symbolizer.create({ paths });
let bytes = 0;
const r = await symbolizeStream(
  createReadStream(dump),
  (x) => {
    bytes += x.length;
  },
  s3,
);
await s3.close();
const filterSeconds = (performance.now() - t) / 1000;

const f1 = (n) => n.toFixed(0);
console.log(`symbolize bench, lab ${k}: ${dump}\n  with ${tree}/vmlinux and ${moduleDir}/msl_leaky.ko`);
console.log(
  `  ${total} frames in the dump, ${frames.length} distinct; sample of ${sample.length} (${resolved} resolved)`,
);
console.log(`  one eu-addr2line per frame:            ${f1(perProcess)} frames/s (${jobs.length} processes)`);
console.log(
  `  memsleuth Symbolizer, same sample:     ${f1(batchedSample)} frames/s  = ${(batchedSample / perProcess).toFixed(1)}x`,
);
console.log(
  `  memsleuth Symbolizer, all distinct:    ${f1(batchedAll)} frames/s  = ${(batchedAll / perProcess).toFixed(1)}x`,
);
console.log(
  `  memsleuth symbolize, whole dump:       ${f1(r.frames / filterSeconds)} frames/s  = ${(r.frames / filterSeconds / perProcess).toFixed(1)}x (${r.resolved}/${r.frames} resolved, ${(bytes / 1e6).toFixed(1)} MB out in ${filterSeconds.toFixed(1)} s)`,
);
