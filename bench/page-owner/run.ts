/**
 * `npm run bench:page-owner`: memsleuth page-owner sort/diff against the kernel's C
 * page_owner_sort (6.12) on a >= 1 GB dump built from the lab's real records (PFN, ts
 * and pid varied so records are distinct), with wall time, peak RSS (VmHWM via
 * /usr/bin/time -v) and MB/s against `cat FILE > /dev/null`. Files live under /tmp and
 * are deleted afterwards. Set BENCH_MB to change the size (default 1100).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pageOwnerSortBinary } from '../../test/page-owner-c/tools.js';

// Run from the repository root (npm run does), so paths do not depend on the build dir.
const ROOT = process.cwd();
const CLI_BIN = join(ROOT, 'bin', 'memsleuth.js');
/** page_owner of a committed lab bundle (test/fixtures/lab-6.12), read from the archive. */
const labPageOwner = (moment: string) =>
  execFileSync(
    'tar',
    ['-xzOf', join(ROOT, 'test', 'fixtures', 'lab-6.12', `${moment}.tar.gz`), 'page_owner'],
    {
      encoding: 'latin1',
      maxBuffer: 1 << 30,
    },
  );
const targetBytes = Number(process.env.BENCH_MB ?? 1100) * 1e6;
const dir = process.env.BENCH_DIR ?? '/tmp';

async function buildDump(path: string, moment: 'before' | 'after', seed: number): Promise<number> {
  const src = labPageOwner(moment);
  const records = src.split('\n\n').filter((r) => r.startsWith('Page allocated'));
  const out = createWriteStream(path, { encoding: 'latin1' });
  let bytes = 0;
  let pfn = 0x100000 + seed;
  let ts = 1_000_000_000 + seed;
  let round = 0;
  while (bytes < targetBytes) {
    round++;
    for (const r of records) {
      pfn += 1;
      ts += 997;
      // A realistic machine has a few hundred processes, not one per record.
      const pid = 1000 + ((round * 7919 + pfn) % 500);
      const rec = r
        .replace(/pid \d+, tgid \d+/, `pid ${pid}, tgid ${pid}`)
        .replace(/ts \d+ ns/, `ts ${ts} ns`)
        .replace(/PFN 0x[0-9a-f]+/, `PFN 0x${pfn.toString(16)}`);
      const chunk = `${rec}\n\n`;
      bytes += chunk.length;
      if (!out.write(chunk)) await once(out, 'drain');
    }
  }
  out.end();
  await once(out, 'finish');
  return bytes;
}

interface Run {
  wallS: number;
  /** User + system CPU seconds: what the run costs when other work shares the cores. */
  cpuS: number;
  maxRssMB: number;
}

function timed(cmd: string, args: string[]): Run {
  const r = spawnSync('/usr/bin/time', ['-v', cmd, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.slice(-2000)}`);
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(r.stderr)!;
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)!;
  const wallS = Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]);
  const user = Number(/User time \(seconds\): ([\d.]+)/.exec(r.stderr)![1]);
  const sys = Number(/System time \(seconds\): ([\d.]+)/.exec(r.stderr)![1]);
  return { wallS, cpuS: user + sys, maxRssMB: Number(rss[1]) / 1024 };
}

function row(name: string, r: Run, sizeMB: number, cat: Run): string {
  return `${name.padEnd(44)} ${r.wallS.toFixed(1).padStart(6)} s wall ${r.cpuS.toFixed(1).padStart(6)} s cpu ${r.maxRssMB.toFixed(0).padStart(5)} MB RSS ${(sizeMB / r.wallS).toFixed(0).padStart(4)} MB/s (cat ${(sizeMB / cat.wallS).toFixed(0)} MB/s)`;
}

async function main() {
  if (!existsSyncSafe('/usr/bin/time')) throw new Error('/usr/bin/time is missing (Debian package: time)');
  const cBin = pageOwnerSortBinary('6.12');
  const a = join(dir, `pos-bench-after-${process.pid}`);
  const b = join(dir, `pos-bench-before-${process.pid}`);
  const outC = join(dir, `pos-bench-c-${process.pid}.out`);
  const outJ = join(dir, `pos-bench-js-${process.pid}.out`);
  try {
    process.stderr.write('building dumps...\n');
    await buildDump(a, 'after', 0);
    await buildDump(b, 'before', 1);
    const sizeMB = statSync(a).size / 1e6;
    console.log(
      `dump: ${sizeMB.toFixed(0)} MB (${a}); load: ${readFileSync('/proc/loadavg', 'utf8').trim()}`,
    );
    const cat = timed('sh', ['-c', `cat ${a} > /dev/null`]);
    console.log(row('cat FILE > /dev/null', cat, sizeMB, cat));
    for (const opts of [[], ['--cull=stacktrace', '-m']]) {
      const c = timed(cBin, [...opts, a, outC]);
      const j = timed(process.execPath, [CLI_BIN, 'page-owner', 'sort', ...opts, a, outJ]);
      const same = spawnSync('cmp', ['-s', outC, outJ]).status === 0;
      const label = opts.length ? opts.join(' ') : '(default)';
      console.log(row(`C page_owner_sort ${label}`, c, sizeMB, cat));
      console.log(row(`memsleuth page-owner sort ${label}`, j, sizeMB, cat));
      console.log(
        `  ratio: ${(c.wallS / j.wallS).toFixed(1)}x faster (wall), ${(c.cpuS / j.cpuS).toFixed(1)}x (cpu), RSS ${(j.maxRssMB / c.maxRssMB).toFixed(2)} of C; output identical: ${same}`,
      );
    }
    // The manual workflow page-owner diff replaces: page_owner_sort --cull=stacktrace on
    // both dumps (then diff by eye); its time is the sum of the two runs, its RSS the larger.
    const c1 = timed(cBin, ['--cull=stacktrace', '-m', b, outC]);
    const c2 = timed(cBin, ['--cull=stacktrace', '-m', a, outJ]);
    const cBoth = {
      wallS: c1.wallS + c2.wallS,
      cpuS: c1.cpuS + c2.cpuS,
      maxRssMB: Math.max(c1.maxRssMB, c2.maxRssMB),
    };
    const d = timed(process.execPath, [CLI_BIN, 'page-owner', 'diff', b, a, '-n', '5']);
    console.log(row('C page_owner_sort --cull=st -m, both dumps', cBoth, 2 * sizeMB, cat));
    console.log(row('memsleuth page-owner diff (2 dumps)', d, 2 * sizeMB, cat));
    console.log(
      `  ratio: ${(cBoth.wallS / d.wallS).toFixed(1)}x faster (wall), ${(cBoth.cpuS / d.cpuS).toFixed(1)}x (cpu), RSS ${(d.maxRssMB / cBoth.maxRssMB).toFixed(2)} of C`,
    );
    console.log(`load after: ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
  } finally {
    for (const f of [a, b, outC, outJ]) rmSync(f, { force: true });
  }
}

function existsSyncSafe(p: string): boolean {
  try {
    statSync(p);
    return true;
  } catch {
    return false;
  }
}

await main();
