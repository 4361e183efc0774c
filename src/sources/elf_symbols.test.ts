import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectParseError } from '../../test/parsers.js';
import { REPO_ROOT } from '../../test/paths.js';
import { type ElfFile, fileOffsetOf, functionAt, parseElf, vaddrOfFileOffset } from './elf_symbols.js';

// Checked against binutils (readelf, objdump, addr2line: installed with gcc by
// scripts/ensure-deps.sh) on a program built here and on this machine's libc.
let dir: string;
let bin: string;
let libc: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'msl-elf-'));
  bin = join(dir, 'user-leak');
  execFileSync('gcc', [
    '-O1',
    '-g',
    '-fno-omit-frame-pointer',
    '-fno-inline',
    '-o',
    bin,
    join(REPO_ROOT, 'test/trace/programs/user-leak.c'),
  ]);
  libc = realpathSync(execFileSync('gcc', ['-print-file-name=libc.so.6'], { encoding: 'utf8' }).trim());
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** FUNC symbols readelf lists (defined ones), name -> value and size. */
function readelfFunctions(path: string, dynamic: boolean): Map<string, { value: bigint; size: number }> {
  const out = new Map<string, { value: bigint; size: number }>();
  const text = execFileSync('readelf', ['-W', dynamic ? '--dyn-syms' : '--syms', path], { encoding: 'utf8' });
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    // Num: Value Size Type Bind Vis Ndx Name
    if (f.length < 8 || (f[3] !== 'FUNC' && f[3] !== 'IFUNC') || f[6] === 'UND') continue;
    const name = f[7]!.replace(/@.*$/, '');
    if (!out.has(name)) out.set(name, { value: BigInt(`0x${f[1]}`), size: Number(f[2]) });
  }
  return out;
}

function objdumpBytes(path: string, vaddr: bigint, n: number): string {
  const text = execFileSync(
    'objdump',
    [
      '-d',
      `--start-address=0x${vaddr.toString(16)}`,
      `--stop-address=0x${(vaddr + BigInt(n)).toString(16)}`,
      path,
    ],
    { encoding: 'utf8' },
  );
  return [...text.matchAll(/^\s*[0-9a-f]+:\t((?:[0-9a-f]{2} )+)/gm)]
    .map((m) => m[1]!.trim().replace(/ /g, ''))
    .join('');
}

describe('ELF symbol tables', () => {
  let prog: ElfFile;
  let lib: ElfFile;
  beforeAll(() => {
    prog = parseElf(readFileSync(bin), { file: bin });
    lib = parseElf(readFileSync(libc), { file: libc });
  });

  it('reads the header and PT_LOAD segments as readelf does', () => {
    expect(prog).toMatchObject({ class: 64, littleEndian: true, type: 3, machine: 62 });
    const loads = execFileSync('readelf', ['-lW', bin], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.trim().startsWith('LOAD'))
      .map((l) => l.trim().split(/\s+/));
    expect(prog.loads.map((s) => [s.offset, s.vaddr, s.fileSize])).toEqual(
      loads.map((f) => [BigInt(f[1]!), BigInt(f[2]!), BigInt(f[4]!)]),
    );
    expect(prog.buildId).toMatch(/^[0-9a-f]{40}$/);
  });

  it('finds every function of the program’s .symtab and of libc’s .dynsym with readelf’s value and size', () => {
    for (const [path, elf, dynamic] of [
      [bin, prog, false],
      [libc, lib, true],
    ] as const) {
      const want = readelfFunctions(path, dynamic);
      expect(want.size).toBeGreaterThan(5);
      for (const [name, w] of want) {
        const s = elf.byName.get(name);
        expect(s, `${path}: ${name}`).toBeDefined();
        if (s?.table === (dynamic ? 'dynsym' : 'symtab'))
          expect([s.value, s.size]).toEqual([w.value, w.size]);
      }
    }
    expect(prog.byName.get('leak_records')).toMatchObject({ type: 2, bind: 0, table: 'symtab' });
  });

  it('gives the file offsets uprobes need: the bytes there are the function’s first instruction', () => {
    const buf = readFileSync(libc);
    for (const fn of ['malloc', 'calloc', 'realloc', 'free', 'mmap', 'munmap']) {
      const sym = lib.byName.get(fn)!;
      const off = fileOffsetOf(lib, sym.value)!;
      expect(vaddrOfFileOffset(lib, off)).toBe(sym.value);
      const want = objdumpBytes(libc, sym.value, 4);
      expect(buf.subarray(Number(off), Number(off) + want.length / 2).toString('hex'), fn).toBe(want);
    }
  });

  it('names the function an address falls in, as addr2line does', () => {
    for (const name of ['leak_records', 'release_records', 'balanced_churn', 'main']) {
      const s = prog.byName.get(name)!;
      const mid = s.value + BigInt(Math.floor(s.size / 2));
      const a2l = execFileSync('addr2line', ['-f', '-e', bin, `0x${mid.toString(16)}`], {
        encoding: 'utf8',
      }).split('\n')[0];
      expect(functionAt(prog, mid)?.symbol.name).toBe(a2l);
      expect(functionAt(prog, mid)?.offset).toBe(Math.floor(s.size / 2));
    }
    expect(functionAt(prog, 0n)).toBeUndefined();
  });

  it('rejects what is not ELF, and a file cut short, with the offset', () => {
    expectParseError(() => parseElf(Buffer.from('#!/bin/sh\n'), { file: 'x' }), {
      message: ['x (byte 0)', 'ELF magic', '2321'],
    });
    const cut = readFileSync(bin).subarray(0, 200);
    expectParseError(() => parseElf(cut, { file: 'cut' }), {
      message: ['cut', 'inside the file (200 bytes)'],
    });
  });
});
