import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../../test/children.js';
import { parseErrorOf } from '../../test/parsers.js';
import { labFixture, REPO_FIXTURES } from '../../test/paths.js';
import { parseProcStatus } from './proc_status.js';
import { parseSmaps, parseSmapsRollup } from './smaps.js';

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

describe('parseSmaps on a live process', () => {
  // A sleeping child: its mappings and counters stay still between reads.
  let child: ReturnType<typeof spawn>;
  let pid: number;
  beforeAll(async () => {
    child = spawn('sleep', ['60'], { stdio: 'ignore' });
    pid = child.pid!;
    // Sleeping in nanosleep: exec and the dynamic loader are done, the mappings stay put.
    await until(() => readFileSync(`/proc/${pid}/stat`, 'utf8').includes('(sleep) S '));
  });
  afterAll(() => {
    child.kill();
  });

  it('has one record per line of /proc/PID/maps, with the same ranges, perms and names', () => {
    const maps = parseSmaps(readFileSync(`/proc/${pid}/smaps`, 'utf8'), { file: 'smaps' });
    const lines = readFileSync(`/proc/${pid}/maps`, 'utf8').trimEnd().split('\n');
    expect(maps).toHaveLength(lines.length);
    maps.forEach((m, i) => {
      const parts = lines[i]!.split(/ +/);
      expect(`${m.start}-${m.end}`).toBe(parts[0]);
      expect(m.perms).toBe(parts[1]);
      expect(m.offset).toBe(parts[2]);
      expect(m.dev).toBe(parts[3]);
      expect(m.inode).toBe(Number(parts[4]));
      expect(m.pathname).toBe(parts.slice(5).join(' '));
      expect(m.rangeBytes).toBe(m.bytes.Size);
      expect(m.vmFlags.length).toBeGreaterThan(0);
      for (const f of m.vmFlags) expect(f).toMatch(/^[a-z0-9?]{2}$/);
      if (m.perms[0] === 'r') expect(m.vmFlags).toContain('rd');
      expect(m.thpEligible).toBeDefined();
    });
    expect(maps.some((m) => m.pathname === '[stack]')).toBe(true);
    expect(maps.some((m) => m.pathname === '[vdso]')).toBe(true);
    expect(maps.some((m) => m.pathname === '')).toBe(true);
  });

  it('sums to smaps_rollup and to status', () => {
    const maps = parseSmaps(readFileSync(`/proc/${pid}/smaps`, 'utf8'));
    const rollup = parseSmapsRollup(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    const status = parseProcStatus(readFileSync(`/proc/${pid}/status`, 'utf8'));
    expect(rollup.pathname).toBe('[rollup]');
    expect(rollup.start).toBe(maps[0]!.start);
    for (const key of [
      'Rss',
      'Private_Clean',
      'Private_Dirty',
      'Shared_Clean',
      'Shared_Dirty',
      'Anonymous',
      'Swap',
    ]) {
      expect(sum(maps.map((m) => m.bytes[key]!)), key).toBe(rollup.bytes[key]);
    }
    // Pss is truncated to kB per mapping in smaps and once in the rollup.
    const pss = sum(maps.map((m) => m.bytes.Pss!));
    expect(rollup.bytes.Pss! - pss).toBeGreaterThanOrEqual(0);
    expect(rollup.bytes.Pss! - pss).toBeLessThan(maps.length * 1024);
    expect(rollup.bytes.Rss).toBe(status.bytes.VmRSS);
    expect(rollup.bytes.Anonymous).toBe(status.bytes.RssAnon);
    expect(rollup.bytes.Pss_Anon! + rollup.bytes.Pss_File! + rollup.bytes.Pss_Shmem!).toBeLessThanOrEqual(
      rollup.bytes.Pss!,
    );
  });

  // Speed is measured in benchmarks, never timed here; this checks that a large input
  // (128 copies of a live smaps) is read whole, every mapping in order.
  it('reads a 128-fold concatenation of a live smaps completely', () => {
    const one = readFileSync(`/proc/${process.pid}/smaps`, 'utf8');
    const single = parseSmaps(one);
    const big = parseSmaps(one.repeat(128));
    expect(big.length).toBe(single.length * 128);
    expect(big[big.length - 1]!.start).toBe(single[single.length - 1]!.start);
  });
});

describe('parseSmaps on captures', () => {
  it('reads every smaps of the lab captures; init sums to its status', () => {
    for (const kernel of ['6.1', '6.12'] as const) {
      const dir = join(labFixture(kernel, 'after'), 'proc');
      for (const pid of readdirSync(dir)) {
        const maps = parseSmaps(readFileSync(join(dir, pid, 'smaps'), 'utf8'));
        const status = parseProcStatus(readFileSync(join(dir, pid, 'status'), 'utf8'));
        if (status.bytes.VmRSS === undefined) {
          expect(maps).toEqual([]); // kernel thread: empty smaps
          continue;
        }
        expect(sum(maps.map((m) => m.bytes.Rss!))).toBe(status.bytes.VmRSS);
        // The gate area ([vsyscall]) is printed but is not part of the mm's total_vm.
        const vmas = maps.filter((m) => m.pathname !== '[vsyscall]');
        expect(sum(vmas.map((m) => m.rangeBytes))).toBe(status.bytes.VmSize);
        expect(sum(maps.map((m) => m.bytes.Anonymous!))).toBe(status.bytes.RssAnon);
      }
    }
  });

  it('reads the 3.10-era format quoted in seed 001 (Size first, KernelPageSize last, no VmFlags)', () => {
    const maps = parseSmaps(readFileSync(join(REPO_FIXTURES, 'seed-001-3.10/smaps'), 'utf8'));
    expect(maps).toHaveLength(2);
    expect(maps[0]).toMatchObject({
      start: '7faae0e49000',
      perms: 'rw-p',
      pathname: '',
      inode: 0,
      line: 1,
      vmFlags: [],
    });
    expect(maps[0]!.bytes).toMatchObject({
      Size: 10240 * 1024,
      Rss: 80 * 1024,
      Private_Dirty: 80 * 1024,
      MMUPageSize: 4096,
    });
    expect(maps[0]!.bytes.Locked).toBeUndefined();
    expect(maps[1]!.perms).toBe('---p');
    expect(maps[1]!.line).toBe(15);
  });

  it('keeps names with spaces, (deleted) and [anon:...] as printed', () => {
    const text = readFileSync(join(REPO_FIXTURES, 'linux-6.18-four-types/proc/17695/smaps'), 'utf8');
    const names = parseSmaps(text).map((m) => m.pathname);
    expect(names).toContain('/dev/zero (deleted)');
    expect(names).toContain('/memfd:memsleuth-fixture (deleted)');
    expect(names).toContain('[heap]');
  });

  it('reads the 4.15-4.19 per-mapping format (fixed spacing, "Private_Hugetlb: %7lu kB", VmFlags)', () => {
    // show_smap() of 4.15 (fs/proc/task_mmu.c) printed with these exact format strings; the
    // values are those of the thread-stack record quoted in seed 001.
    const kb = (name: string, v: number, width = 8) =>
      `${`${name}:`.padEnd(16 - (8 - width))}${String(v).padStart(width)} kB\n`;
    const text =
      '7faae0e49000-7faae1849000 rw-p 00000000 00:00 0 \n' +
      kb('Size', 10240) +
      kb('KernelPageSize', 4) +
      kb('MMUPageSize', 4) +
      kb('Rss', 80) +
      kb('Pss', 80) +
      kb('Shared_Clean', 0) +
      kb('Shared_Dirty', 0) +
      kb('Private_Clean', 0) +
      kb('Private_Dirty', 80) +
      kb('Referenced', 60) +
      kb('Anonymous', 80) +
      kb('LazyFree', 0) +
      kb('AnonHugePages', 0) +
      kb('ShmemPmdMapped', 0) +
      kb('Shared_Hugetlb', 0) +
      'Private_Hugetlb:       0 kB\n' +
      kb('Swap', 0) +
      kb('SwapPss', 0) +
      kb('Locked', 0) +
      'ProtectionKey:         0\n' +
      'VmFlags: rd wr mr mw me ac \n';
    expect(text).toContain('Rss:                  80 kB\n');
    const [m] = parseSmaps(text);
    expect(m!.bytes).toMatchObject({ Size: 10240 * 1024, Rss: 80 * 1024, Private_Hugetlb: 0, LazyFree: 0 });
    expect(m!.protectionKey).toBe(0);
    expect(m!.thpEligible).toBeUndefined();
    expect(m!.vmFlags).toEqual(['rd', 'wr', 'mr', 'mw', 'me', 'ac']);
  });

  it('reads the 4.14-4.19 smaps_rollup header (no fields before Rss)', () => {
    // show_smap() in rollup mode prints show_vma_header_prefix(first_vma_start, end, 0, 0, 0, 0).
    const text =
      '00400000-7fff2a9fd000 ---p 00000000 00:00 0                          [rollup]\n' +
      'Rss:                 884 kB\nPss:                 385 kB\nShared_Clean:        696 kB\n' +
      'Shared_Dirty:          0 kB\nPrivate_Clean:        120 kB\nPrivate_Dirty:        68 kB\n' +
      'Referenced:          884 kB\nAnonymous:            68 kB\nLazyFree:              0 kB\n' +
      'AnonHugePages:         0 kB\nShmemPmdMapped:        0 kB\nShared_Hugetlb:        0 kB\n' +
      'Private_Hugetlb:        0 kB\nSwap:                  0 kB\nSwapPss:               0 kB\nLocked:              385 kB\n';
    const r = parseSmapsRollup(text);
    expect(r.bytes.Rss).toBe(884 * 1024);
    expect(r.bytes.Private_Hugetlb).toBe(0);
    expect(r.bytes.Pss_Anon).toBeUndefined();
  });
});

describe('parseSmaps on garbage', () => {
  const file = 'p/smaps';
  const head = '00400000-00401000 r--p 00000000 00:02 12                                 /bin/busybox\n';
  it('rejects with file and line', () => {
    expect(parseErrorOf(() => parseSmaps('Rss: 4 kB\n', { file })).line).toBe(1);
    expect(parseErrorOf(() => parseSmaps(`${head}Rss:  4 kB\nthis is garbage\n`, { file })).line).toBe(3);
    expect(parseErrorOf(() => parseSmaps(`${head}Rss:  x kB\n`, { file })).message).toContain('Rss');
    expect(parseErrorOf(() => parseSmaps(`${head}Rss:  4\n`, { file })).line).toBe(2);
    expect(parseErrorOf(() => parseSmaps(`${head}Rss:  4 kB\nRss:  4 kB\n`, { file })).line).toBe(3);
    expect(parseErrorOf(() => parseSmaps(`${head}Rss:  4 kB\n\nPss: 4 kB\n`, { file })).line).toBe(3);
    expect(
      parseErrorOf(() => parseSmaps(`00400000-00401000 r--q 0 00:02 12\nRss: 4 kB\n`, { file })).line,
    ).toBe(1);
    expect(
      parseErrorOf(() => parseSmaps(`00402000-00401000 r--p 0 00:02 12\nRss: 4 kB\n`, { file })).line,
    ).toBe(1);
    expect(
      parseErrorOf(() => parseSmaps(`${head}Size:  4 kB\nTHPeligible: maybe\nRss: 4 kB\n`, { file })).line,
    ).toBe(3);
    // A record cut before Rss is truncated, not a mapping without memory.
    expect(parseErrorOf(() => parseSmaps(`${head}Size:  4 kB\n`, { file })).line).toBe(1);
    parseErrorOf(() => parseSmaps('\x7fELF\x02\x01\x01\0\0\0', { file }));
  });

  it('smaps_rollup must be one [rollup] record', () => {
    parseErrorOf(() => parseSmapsRollup('', { file }));
    expect(parseErrorOf(() => parseSmapsRollup(`${head}Rss: 4 kB\n`, { file })).message).toContain(
      '[rollup]',
    );
    const r = '00400000-7fff2a9fd000 ---p 00000000 00:00 0   [rollup]\nRss: 4 kB\n';
    expect(parseErrorOf(() => parseSmapsRollup(r + r, { file })).line).toBe(3);
  });
});
