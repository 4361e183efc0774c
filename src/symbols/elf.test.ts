import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_FIXTURES } from '../../test/paths.js';
import { MemsleuthError } from '../model/errors.js';
import { parseElfHeader } from './elf.js';
import { ElfFile, moduleNameOfPath } from './elf-file.js';

const FIX = join(REPO_FIXTURES, 'symbols');
const FILES = ['module/fixture_mod.ko', 'tree/vmlinux', 'prog/prog'];

/** `readelf -sW` FUNC symbols: name, value, size, section index (the independent reference). */
function readelfFunctions(path: string): string[] {
  const out = execFileSync('readelf', ['-sW', path], { encoding: 'utf8' });
  const rows: string[] = [];
  let inSymtab = false;
  for (const line of out.split('\n')) {
    if (line.startsWith("Symbol table '")) inSymtab = line.includes("'.symtab'");
    const m = /^\s*\d+: ([0-9a-f]+)\s+(\d+) FUNC\s+\w+\s+\w+\s+(\d+) (\S+)/.exec(line);
    if (inSymtab && m) rows.push(`${m[4]} ${BigInt(`0x${m[1]}`)} ${m[2]} ${m[3]}`);
  }
  return rows.sort();
}

/** `readelf -SW` section names and types by index. */
function readelfSections(path: string): string[] {
  const out = execFileSync('readelf', ['-SW', path], { encoding: 'utf8' });
  const rows: string[] = [];
  for (const line of out.split('\n')) {
    const m = /^\s*\[\s*(\d+)\] (\S+)\s+(\S+)\s+([0-9a-f]+) ([0-9a-f]+) ([0-9a-f]+)/.exec(line);
    if (m && m[1] !== '0')
      rows.push(
        `${m[1]} ${m[2]} ${BigInt(`0x${m[4]}`)} ${Number.parseInt(m[5]!, 16)} ${Number.parseInt(m[6]!, 16)}`,
      );
  }
  return rows;
}

describe('ElfFile', () => {
  for (const file of FILES) {
    it(`reads the sections and function symbols readelf shows in ${file}`, async () => {
      const path = join(FIX, file);
      const elf = await ElfFile.open(path);
      expect(
        elf.sections.slice(1).map((s) => `${s.index} ${s.name} ${s.addr} ${s.offset} ${s.size}`),
      ).toEqual(readelfSections(path));
      const table = await elf.symbols();
      const ours = table.symbols
        .filter((s) => s.type === 2)
        .map((s) => `${s.name} ${s.value} ${s.size} ${s.section}`)
        .sort();
      expect(ours).toEqual(readelfFunctions(path));
      expect(elf.hasDebugInfo).toBe(true);
    });
  }

  it('tells a module (ET_REL with .modinfo name=) from an image and a program', async () => {
    const ko = await ElfFile.open(join(FIX, 'module/fixture_mod.ko'));
    expect([ko.header.type, ko.moduleName]).toEqual(['REL', 'fixture_mod']);
    const vmlinux = await ElfFile.open(join(FIX, 'tree/vmlinux'));
    expect([vmlinux.header.type, vmlinux.moduleName]).toEqual(['EXEC', undefined]);
    const prog = await ElfFile.open(join(FIX, 'prog/prog'));
    expect([prog.header.type, prog.moduleName]).toEqual(['DYN', undefined]);
  });

  it('measures each function to the next one of its section, as kallsyms prints the length', async () => {
    const table = await (await ElfFile.open(join(FIX, 'module/fixture_mod.ko'))).symbols();
    // two static fx_twin (fixture_mod.c, fixture_twin.c) of 30 and 45 bytes, each padded to 16
    const twins = table.lookup('fx_twin').map((s) => [s.size, s.span, s.sectionName, s.last]);
    expect(twins).toEqual([
      [30, 32, '.text', false],
      [45, 48, '.text', false],
    ]);
    expect(table.lookup('fx_init').map((s) => [s.sectionName, s.last])).toEqual([['.init.text', true]]);
    expect(table.lookup('fx_caller_b').map((s) => s.last)).toEqual([true]);
  });

  it('maps a run-time address of a mapped program back to its file address', async () => {
    const prog = await ElfFile.open(join(FIX, 'prog/prog'));
    const leak = (await prog.symbols()).lookup('leak')[0]!;
    // loaded at bias B: the text segment's mapping starts at B + its page-aligned vaddr and
    // maps the page-aligned file offset, as a /proc/PID/maps line says
    const B = 0x555555554000n;
    const seg = prog.segments.find((p) => p.type === 1 && (p.flags & 1) === 1)!;
    const page = (n: bigint) => n & ~0xfffn;
    const mapStart = B + page(seg.vaddr);
    const mapOffset = page(BigInt(seg.offset));
    expect(prog.fileAddress(B + leak.value + 4n, mapStart, mapOffset)).toBe(leak.value + 4n);
    // outside every loaded segment: no file address
    expect(prog.fileAddress(B - 0x1000n, mapStart, mapOffset)).toBeUndefined();
  });

  it('refuses a file that is not ELF, saying what it found', async () => {
    await expect(ElfFile.open(join(FIX, 'prog/prog.c'))).rejects.toThrow(MemsleuthError);
    expect(() => parseElfHeader(readFileSync(join(FIX, 'prog/prog.c')), 'prog.c')).toThrow(
      /^prog\.c: expected an ELF file \(\\x7fELF\), found "\/\/ S"/,
    );
  });

  it('names modules as the kernel does', () => {
    expect(moduleNameOfPath('/lib/modules/6.1/kernel/drivers/foo-bar.ko')).toBe('foo_bar');
    expect(moduleNameOfPath('/usr/lib/debug/lib/modules/6.1/kernel/x/nf_nat.ko.debug')).toBe('nf_nat');
    expect(moduleNameOfPath('/boot/vmlinux-6.1')).toBeUndefined();
  });
});
