import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { labFixture, REPO_FIXTURES } from '../../test/paths.js';
import { isShmemMapping, smapsByName } from '../analysis/process.js';
import {
  rollupFields,
  SmapsSizesScan,
  smapsSizes,
  smapsSplit,
  statFields,
  statmBytes,
  statusFields,
} from './proc_fast.js';
import { parseProcStat } from './proc_stat.js';
import { parseProcStatm } from './proc_statm.js';
import { parseProcStatus } from './proc_status.js';
import { parseSmaps, parseSmapsRollup, type SmapsNameSizes } from './smaps.js';

/** Every proc/<pid> directory of the committed captures that hold processes. */
function capturedProcDirs(): string[] {
  const roots = [
    join(REPO_FIXTURES, 'linux-6.18-four-types'),
    labFixture('6.1', 'before'),
    labFixture('6.1', 'after'),
    labFixture('6.12', 'before'),
    labFixture('6.12', 'after'),
  ];
  return roots.flatMap((r) =>
    readdirSync(join(r, 'proc'))
      .filter((p) => /^\d+$/.test(p))
      .map((p) => join(r, 'proc', p)),
  );
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined; // not captured, or the process exited
  }
}

/** The fast reader's answer equals the full parser's for every field it returns. */
function checkStatus(text: string, where: string): void {
  const fast = statusFields(text);
  expect(fast, `${where}: read fast`).toBeDefined();
  const full = parseProcStatus(text);
  expect(fast!.name, where).toBe(full.name);
  expect(fast!.ppid, where).toBe(full.ppid);
  expect(fast!.state, where).toBe(full.state);
  for (const [k, v] of Object.entries(fast!.bytes)) expect(v, `${where} ${k}`).toBe(full.bytes[k]);
  for (const [k, v] of Object.entries(fast!.counts)) expect(v, `${where} ${k}`).toBe(full.counts[k]);
  // Every field the hot paths ask for that the kernel printed was read.
  for (const k of ['VmSize', 'VmRSS', 'VmSwap', 'RssAnon', 'RssFile', 'RssShmem', 'VmExe', 'VmData', 'VmStk'])
    expect(fast!.bytes[k], `${where} ${k}`).toBe(full.bytes[k]);
  for (const k of ['Threads', 'Kthread']) expect(fast!.counts[k], `${where} ${k}`).toBe(full.counts[k]);
}

function checkStat(text: string, where: string): void {
  const fast = statFields(text);
  expect(fast, `${where}: read fast`).toBeDefined();
  const full = parseProcStat(text);
  for (const k of Object.keys(fast!) as (keyof typeof fast & string)[])
    expect(fast![k as keyof typeof fast], `${where} ${k}`).toBe(full[k as keyof typeof full]);
  expect(fast!.startstack, where).toBe(full.startstack);
}

function checkRollup(text: string, where: string): void {
  const fast = rollupFields(text);
  expect(fast, `${where}: read fast`).toBeDefined();
  const full = parseSmapsRollup(text);
  for (const k of ['Rss', 'Pss', 'Pss_Anon', 'Pss_File', 'Pss_Shmem', 'Private_Clean', 'Private_Dirty'])
    expect(fast!.bytes[k], `${where} ${k}`).toBe(full.bytes[k]);
  for (const [k, v] of Object.entries(fast!.bytes)) expect(v, `${where} ${k}`).toBe(full.bytes[k]);
}

/** `text` cut into pieces of `every` whole lines, as Snapshot.readLines hands them. */
function pieces(text: string, every: number): string[] {
  const lines = text.split(/(?<=\n)/);
  const out: string[] = [];
  for (let i = 0; i < lines.length; i += every) out.push(lines.slice(i, i + every).join(''));
  return out;
}

function scanPieces(parts: readonly string[]): Map<string, SmapsNameSizes> | undefined {
  const scan = new SmapsSizesScan();
  for (const p of parts) scan.feed(p);
  return scan.finish();
}

/** What smapsSplit returns, from the full parser: the MAP_SHARED and shmem-named mappings' page cache. */
function fullSplit(text: string) {
  return parseSmaps(text)
    .filter((m) => m.perms[3] === 's' || isShmemMapping(m))
    .map((m) => {
      const rss = m.bytes.Rss ?? 0;
      return {
        pathname: m.pathname,
        shared: m.perms[3] === 's',
        cacheBytes: rss - Math.min(m.bytes.Anonymous ?? 0, rss),
      };
    });
}

function checkSmaps(text: string, where: string): void {
  const split = smapsSplit(text);
  expect(split, `${where}: split read fast`).toBeDefined();
  expect(split!.mappings, where).toEqual(fullSplit(text));
  const fast = smapsSizes(text);
  expect(fast, `${where}: read fast`).toBeDefined();
  // Same names in the same order, same sums.
  const full = [...smapsByName(parseSmaps(text))];
  expect([...fast!], where).toEqual(full);
  // In pieces of whole lines (a mapping's header and its fields in different pieces): the same.
  for (const every of [1, 3, 17, 1000])
    expect([...scanPieces(pieces(text, every))!], `${where} by ${every}`).toEqual(full);
}

describe('the fast readers agree with the full parsers on real input', () => {
  it('every status, stat, smaps_rollup and smaps of the committed captures (6.1, 6.12, 6.18, and 3.10 smaps)', () => {
    let n = 0;
    for (const dir of capturedProcDirs()) {
      for (const [f, check] of [
        ['status', checkStatus],
        ['stat', checkStat],
        ['smaps_rollup', checkRollup],
        ['smaps', checkSmaps],
      ] as const) {
        const text = read(join(dir, f));
        if (text === undefined) continue;
        check(text, join(dir, f));
        n++;
      }
    }
    expect(n).toBeGreaterThanOrEqual(20);
    // 2.6.30's documented status: no RssAnon/RssFile/RssShmem, VmSwap or Kthread.
    checkStatus(readFileSync(join(REPO_FIXTURES, 'linux-2.6.30-doc', 'status'), 'utf8'), '2.6.30 doc');
    // 3.10's smaps (no VmFlags before 3.8 either way; [stack:TID] names).
    checkSmaps(readFileSync(join(REPO_FIXTURES, 'seed-001-3.10', 'smaps'), 'utf8'), '3.10 smaps');
    checkSmaps(
      readFileSync(join(REPO_FIXTURES, 'owners-6.18/snapshot/proc/12224/smaps'), 'utf8'),
      'owners smaps',
    );
  });

  it('every process of this machine, kernel threads and zombies included', () => {
    let n = 0;
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      for (const [f, check] of [
        ['status', checkStatus],
        ['stat', checkStat],
        ['smaps_rollup', checkRollup],
        ['smaps', checkSmaps],
      ] as const) {
        const text = read(`/proc/${pid}/${f}`);
        // A process that exited meanwhile, or a kernel thread's smaps_rollup (ESRCH).
        if (text === undefined || text === '') continue;
        check(text, `/proc/${pid}/${f}`);
        n++;
      }
    }
    expect(n).toBeGreaterThan(100);
  });
});

describe('the fast readers decline what the full parsers would reject or read differently', () => {
  const status = readFileSync(join(REPO_FIXTURES, 'linux-6.18-four-types/proc/17695/status'), 'utf8');
  const stat = readFileSync(join(REPO_FIXTURES, 'linux-6.18-four-types/proc/17695/stat'), 'utf8');
  const rollup = readFileSync(join(REPO_FIXTURES, 'linux-6.18-four-types/proc/17695/smaps_rollup'), 'utf8');

  it('status: a malformed or repeated field they read, a missing Name or PPid', () => {
    for (const bad of [
      status.replace(/^VmRSS:.*$/m, 'VmRSS:\t lots kB'),
      status.replace(/^VmRSS:.*$/m, 'VmRSS:\t 12 MB'),
      status.replace(/^Threads:.*$/m, 'Threads:\tmany'),
      `${status}VmSwap:\t0 kB\n`,
      status.replace(/^Name:.*\n/m, ''),
      status.replace(/^PPid:.*\n/m, ''),
      status.replace(/^State:.*$/m, 'State:\tsleeping'),
      status.replace(/^Name:\t(.*)$/m, 'Name:\t$1\r'),
    ]) {
      expect(statusFields(bad)).toBeUndefined();
    }
    // The full parser keeps "12 MB" as text, not bytes: the fast reader leaves it to it.
    expect(parseProcStatus(status.replace(/^VmRSS:.*$/m, 'VmRSS:\t 12 MB')).bytes.VmRSS).toBeUndefined();
    expect(() => parseProcStatus(`${status}VmSwap:\t0 kB\n`)).toThrow();
    // Fields it does not read are the full parser's business.
    expect(statusFields(status.replace(/^Umask:.*$/m, 'Umask:\tgarbage'))).toBeDefined();
  });

  it('stat: a comm with spaces and parentheses is read to the last ")"; a bad number is declined', () => {
    const odd = stat.replace(/\(python3\)/, '(a) (b c))');
    expect(statFields(odd)!.comm).toBe(parseProcStat(odd).comm);
    expect(statFields(odd)!.comm).toBe('a) (b c)');
    for (const bad of [
      stat.replace(/\) ([A-Z]) /, ') $1$1 '),
      stat.replace(/ (\d+) (\d+)\n$/, ' x $2\n'),
      stat.replace(/ (\d+)\n$/, '  $1\n'),
      stat.split(' ').slice(0, 20).join(' '),
      `x${stat}`,
    ]) {
      expect(statFields(bad)).toBeUndefined();
    }
  });

  it('smaps_rollup: a per-mapping smaps, a malformed or repeated size', () => {
    const smaps = readFileSync(join(REPO_FIXTURES, 'linux-6.18-four-types/proc/17695/smaps'), 'utf8');
    for (const bad of [
      smaps,
      rollup.replace(/^Pss: .*$/m, 'Pss:   x kB'),
      `${rollup}Rss:    4 kB\n`,
      rollup.replace(/^Rss:.*\n/m, ''),
      rollup.replace('[rollup]', '[heap]'),
    ]) {
      expect(rollupFields(bad)).toBeUndefined();
    }
    expect(existsSync(join(REPO_FIXTURES, 'linux-6.18-four-types/proc/2/smaps_rollup'))).toBe(false);
  });

  it('smaps: a header that does not parse or ends below its start, a repeated or missing size, a stray line', () => {
    const smaps = readFileSync(join(REPO_FIXTURES, 'linux-6.18-four-types/proc/17695/smaps'), 'utf8');
    const first = smaps.slice(0, smaps.indexOf('\n'));
    const [range] = first.split(' ');
    const [lo, hi] = range!.split('-');
    expect(smapsSizes(smaps)).toBeDefined();
    for (const [why, bad] of [
      ['end below start', smaps.replace(range!, `${hi}-${lo}`)],
      ['perms', smaps.replace(first, first.replace(/ [r-][w-][x-][ps] /, ' rwzp '))],
      ['no inode', smaps.replace(first, first.replace(/ \d+ +/, ' x '))],
      ['repeated Rss', smaps.replace(/^Rss:.*\n/m, (l) => l + l)],
      ['no Size', smaps.replace(/^Size:.*\n/m, '')],
      ['no Rss', smaps.replace(/^Rss:.*\n/m, '')],
      ['Rss not in kB', smaps.replace(/^Rss: .*$/m, 'Rss:   12')],
      ['empty line', smaps.replace('\n', '\n\n')],
      ['stray line', smaps.replace('\n', '\n-- stray --\n')],
      ['field before any header', `Rss:   4 kB\n${smaps}`],
      ['cut', smaps.slice(0, -1)],
      ['too big', smaps.replace(/^Rss: .*$/m, 'Rss:   99999999999999999 kB')],
    ] as const) {
      expect(smapsSizes(bad), why).toBeUndefined();
      // In pieces too: declined in any piece is declined for good.
      expect(scanPieces(pieces(bad, 5)), `${why}, in pieces`).toBeUndefined();
    }
    // A piece cut mid-line (not what readLines hands over) is declined, not misread.
    expect(scanPieces([smaps.slice(0, 100), smaps.slice(100)])).toBeUndefined();
    expect(scanPieces([])).toEqual(new Map());
  });

  it('smaps split: the mappings it reads, each declined when malformed; the other mappings are not looked at', () => {
    const smaps = readFileSync(join(REPO_FIXTURES, 'linux-6.18-four-types/proc/17695/smaps'), 'utf8');
    const split = smapsSplit(smaps)!;
    // MAP_SHARED|MAP_ANONYMOUS, /dev/shm, memfd, the disk file and gconv-modules.cache.
    expect(split.mappings.length).toBeGreaterThanOrEqual(5);
    expect(split.mappings.some((m) => m.pathname.startsWith('/memfd:') && m.cacheBytes > 0)).toBe(true);
    const header = smaps.split('\n').find((l) => l.includes('/memfd:'))!;
    const at = smaps.indexOf(header);
    const end = smaps.indexOf('\nVmFlags:', at);
    /** `smaps` with the memfd mapping's lines (header to VmFlags) changed by `f`. */
    const inMemfd = (f: (block: string) => string) =>
      smaps.slice(0, at) + f(smaps.slice(at, end)) + smaps.slice(end);
    const [range] = header.split(' ');
    const [lo, hi] = range!.split('-');
    for (const [why, bad] of [
      ['end below start', inMemfd((b) => b.replace(range!, `${hi}-${lo}`))],
      ['no Rss', inMemfd((b) => b.replace(/\nRss:.*/, ''))],
      ['repeated Rss', inMemfd((b) => b.replace(/\nRss:.*/, (l) => l + l))],
      ['Rss not in kB', inMemfd((b) => b.replace(/\nRss: .*/, '\nRss:   12'))],
      ['Anonymous not a number', inMemfd((b) => b.replace(/\nAnonymous: .*/, '\nAnonymous:   x kB'))],
      ['too big', inMemfd((b) => b.replace(/\nRss: .*/, '\nRss:   99999999999999999 kB'))],
      ['no blank after the colon', inMemfd((b) => b.replace(/\nRss: +/, '\nRss:'))],
      ['cut', smaps.slice(0, -1)],
      ['last mapping without Rss', smaps.replace(/\nRss:[^\n]*(?![\s\S]*\nRss:)/, '')],
    ] as const) {
      expect(smapsSplit(bad), why).toBeUndefined();
      expect(() => parseSmaps(bad), why).toThrow();
    }
    // CRLF: the full parser reads it (without the CRs); the fast reader leaves it to it.
    expect(smapsSplit(smaps.replaceAll('\n', '\r\n'))).toBeUndefined();
    expect(fullSplit(smaps.replaceAll('\n', '\r\n'))).toEqual(split.mappings);
    // Mapped MAP_PRIVATE under every shmem name (a private /dev/zero, a SysV segment attached
    // read-only, ...): read, as the full parser reads it.
    for (const name of [
      '/dev/zero',
      '/SYSV00000000 (deleted)',
      '/memfd:x (deleted)',
      '/dev/shm/x',
      '[anon_shmem:x]',
    ]) {
      const priv = inMemfd((b) =>
        b.replace(/ [r-][w-][x-]s /, (perms) => perms.replace('s ', 'p ')).replace(/\/memfd:.*/, name),
      );
      const mappings = smapsSplit(priv)!.mappings;
      expect(mappings, name).toEqual(fullSplit(priv));
      expect(
        mappings.some((m) => !m.shared && m.pathname === name && m.cacheBytes > 0),
        name,
      ).toBe(true);
    }
    // The memfd mapping's header with leading zeros: still read (as numbers, start below end).
    expect(smapsSplit(inMemfd((b) => b.replace(range!, `0000${lo}-${hi}`)))).toEqual(split);
    // A stray line in a private file mapping is the full parser's to find.
    const stray = smaps.replace('\n', '\n-- stray --\n');
    expect(smapsSplit(stray)).toEqual(split);
    expect(() => parseSmaps(stray)).toThrow();
    expect(smapsSplit('')).toEqual({ mappings: [] });
    // No header at all, one starting with an empty line: declined (and not a loop for ever).
    for (const bad of ['\n', '\nRss:   4 kB\n', 'Rss:   4 kB\n', '\n\n'])
      expect(smapsSplit(bad), JSON.stringify(bad)).toBeUndefined();
  });

  it('a file cut anywhere (a process exiting mid-read) is declined or read as the full parser reads it', () => {
    const tryFull = <T>(f: () => T): T | undefined => {
      try {
        return f();
      } catch {
        return undefined;
      }
    };
    for (let n = 0; n <= status.length; n++) {
      const cut = status.slice(0, n);
      const fast = statusFields(cut);
      if (fast === undefined) continue;
      const full = tryFull(() => parseProcStatus(cut));
      expect(full, `status cut at ${n}`).toBeDefined();
      expect(fast.name).toBe(full!.name);
      for (const [k, v] of Object.entries(fast.bytes)) expect(v, `cut at ${n}: ${k}`).toBe(full!.bytes[k]);
      for (const [k, v] of Object.entries(fast.counts)) expect(v, `cut at ${n}: ${k}`).toBe(full!.counts[k]);
    }
    for (let n = 0; n <= stat.length; n++) {
      const cut = stat.slice(0, n);
      const fast = statFields(cut);
      if (fast === undefined) continue;
      const full = tryFull(() => parseProcStat(cut));
      expect(full, `stat cut at ${n}`).toBeDefined();
      expect(fast.rssPages).toBe(full!.rssPages);
      expect(fast.startstack).toBe(full!.startstack);
    }
    for (let n = 0; n <= rollup.length; n++) {
      const cut = rollup.slice(0, n);
      const fast = rollupFields(cut);
      if (fast === undefined) continue;
      const full = tryFull(() => parseSmapsRollup(cut));
      // The full parser rejects a record cut before Rss; the fast reader needs Rss too.
      expect(full, `rollup cut at ${n}`).toBeDefined();
      for (const [k, v] of Object.entries(fast.bytes)) expect(v, `cut at ${n}: ${k}`).toBe(full!.bytes[k]);
    }
    const smaps = readFileSync(join(REPO_FIXTURES, 'linux-6.18-four-types/proc/17695/smaps'), 'utf8');
    let read = 0;
    for (let n = 0; n <= smaps.length; n++) {
      const cut = smaps.slice(0, n);
      const fast = smapsSizes(cut);
      if (fast === undefined) continue;
      read++;
      const full = tryFull(() => smapsByName(parseSmaps(cut)));
      expect(full, `smaps cut at ${n}`).toBeDefined();
      expect([...fast], `smaps cut at ${n}`).toEqual([...full!]);
    }
    expect(read).toBeGreaterThan(1);
    let splitRead = 0;
    for (let n = 0; n <= smaps.length; n++) {
      const cut = smaps.slice(0, n);
      const fast = smapsSplit(cut);
      if (fast === undefined) continue;
      splitRead++;
      const full = tryFull(() => fullSplit(cut));
      expect(full, `smaps cut at ${n}`).toBeDefined();
      expect(fast.mappings, `smaps cut at ${n}`).toEqual(full);
    }
    expect(splitRead).toBeGreaterThan(1);
  });
});

describe("statmBytes (the recorder's every tick)", () => {
  const fast = (text: string) => {
    const out = { sizePages: -1, residentPages: -1, sharedPages: -1 };
    const buf = Buffer.from(text, 'latin1');
    return statmBytes(buf, buf.length, out) ? out : undefined;
  };
  const full = (text: string) => {
    const p = parseProcStatm(text);
    return { sizePages: p.sizePages, residentPages: p.residentPages, sharedPages: p.sharedPages };
  };

  it('agrees with parseProcStatm on every statm captured and every process of this machine', () => {
    let n = 0;
    const files = [
      ...capturedProcDirs().map((d) => join(d, 'statm')),
      ...readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .map((p) => `/proc/${p}/statm`),
    ];
    for (const f of files) {
      const text = read(f);
      if (text === undefined || text === '') continue;
      expect(fast(text), f).toEqual(full(text));
      n++;
    }
    expect(n).toBeGreaterThan(50);
    expect(fast('0 0 0 0 0 0 0\n')).toEqual({ sizePages: 0, residentPages: 0, sharedPages: 0 });
  });

  it('declines anything but seven decimals and a newline, and a number too long to be exact', () => {
    const ok = '565 441 417 388 0 77 0\n';
    expect(fast(ok)).toEqual({ sizePages: 565, residentPages: 441, sharedPages: 417 });
    for (let n = 0; n < ok.length; n++) expect(fast(ok.slice(0, n)), `cut at ${n}`).toBeUndefined();
    for (const bad of [
      '565  441 417 388 0 77 0\n',
      ' 565 441 417 388 0 77 0\n',
      '565 441 417 388 0 77 0 1\n',
      '565 441 417 388 0 77\n',
      '565 441 -417 388 0 77 0\n',
      '565 441 417 388 0 77 0\r\n',
      '565 441 417 388 0 77 0\n\n',
      '565\t441 417 388 0 77 0\n',
      '1234567890123456 441 417 388 0 77 0\n',
      'x\n',
    ])
      expect(fast(bad), JSON.stringify(bad)).toBeUndefined();
    // The longest numbers it reads are exact.
    expect(fast('999999999999999 1 2 0 0 0 0\n')!.sizePages).toBe(999_999_999_999_999);
  });
});
