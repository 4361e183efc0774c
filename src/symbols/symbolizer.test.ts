/**
 * The symbolizer on the committed ELF fixtures (test/symbols-fixtures.ts): a module-like
 * .ko, a kernel-like vmlinux in a build-tree-like folder, a user program. References
 * independent of elfutils: objdump's return addresses, the sources' `@tag` lines, and
 * binutils' addr2line.
 */
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FIX, KO, lineOf, PROG, returnOffset, spanOf, TREE, VMLINUX } from '../../test/symbols-fixtures.js';
import { MemsleuthError } from '../model/errors.js';
import { ElfFile } from './elf-file.js';
import {
  type FrameQuery,
  type FrameResolution,
  Symbolizer,
  type SymbolizerOptions,
  tidySourcePath,
} from './symbolizer.js';

const tmp = mkdtempSync(join(tmpdir(), 'memsleuth-symbols-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function withSymbolizer<T>(opts: SymbolizerOptions, f: (s: Symbolizer) => Promise<T>): Promise<T> {
  const s = await Symbolizer.create(opts);
  try {
    return await f(s);
  } finally {
    await s.close();
  }
}

function located(r: FrameResolution): string[] {
  if (r.status !== 'resolved') throw new Error(`unresolved: ${r.message}`);
  return r.locations.map((l) => `${l.function} ${l.file}:${l.line}`);
}

describe('Symbolizer: module frames', () => {
  it('resolves a return address to the call, with the inlined function', async () => {
    const { offset } = returnOffset(KO, 'fx_leak', 'fx_alloc');
    const frame: FrameQuery = {
      func: 'fx_leak',
      offset,
      length: await spanOf(KO, 'fx_leak'),
      module: 'fixture_mod',
    };
    await withSymbolizer({ paths: [join(FIX, 'module')] }, async (s) => {
      const r = await s.resolveFrame(frame);
      expect(located(r)).toEqual([
        `fx_grab fixture_mod.c:${lineOf('module/fixture_mod.c', 'fx_grab')}`,
        `fx_leak fixture_mod.c:${lineOf('module/fixture_mod.c', 'fx_leak')}`,
      ]);
      expect(r).toMatchObject({ section: '.text', elf: KO, file: 'fixture_mod.c' });
      expect((r as { buildId?: string }).buildId).toBe((await ElfFile.open(KO)).buildId);
    });
  });

  it('resolves a function in .init.text through its own section', async () => {
    const { offset } = returnOffset(KO, 'fx_init', 'fx_leak');
    await withSymbolizer({ paths: [KO] }, async (s) => {
      const r = await s.resolveFrame({
        func: 'fx_init',
        offset,
        length: await spanOf(KO, 'fx_init'),
        module: 'fixture_mod',
      });
      expect(located(r)).toEqual([`fx_init fixture_mod.c:${lineOf('module/fixture_mod.c', 'fx_init')}`]);
      expect(r).toMatchObject({ section: '.init.text' });
    });
  });

  it('tells two static functions of one name apart by the printed length', async () => {
    const a = returnOffset(KO, 'fx_twin', 'fx_use', 0);
    const b = returnOffset(KO, 'fx_twin', 'fx_use', 1);
    await withSymbolizer({ paths: [KO] }, async (s) => {
      const [ra, rb] = await s.resolveFrames([
        { func: 'fx_twin', offset: a.offset, length: await spanOf(KO, 'fx_twin', 0), module: 'fixture_mod' },
        { func: 'fx_twin', offset: b.offset, length: await spanOf(KO, 'fx_twin', 1), module: 'fixture_mod' },
      ]);
      expect(located(ra!)).toEqual([`fx_twin fixture_mod.c:${lineOf('module/fixture_mod.c', 'fx_twin_a')}`]);
      expect(located(rb!)).toEqual([
        `fx_twin fixture_twin.c:${lineOf('module/fixture_twin.c', 'fx_twin_b')}`,
      ]);
    });
  });

  it('leaves a frame whose length does not match the file unresolved, warning once', async () => {
    const warnings: string[] = [];
    await withSymbolizer({ paths: [KO], onWarning: (m) => warnings.push(m) }, async (s) => {
      const rs = await s.resolveFrames([
        { func: 'fx_leak', offset: 9, length: 0x99, module: 'fixture_mod' },
        { func: 'fx_caller_a', offset: 9, length: 0x77, module: 'fixture_mod' },
      ]);
      expect(rs.map((r) => r.status === 'unresolved' && r.reason)).toEqual(['mismatch', 'mismatch']);
    });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /^fixture_mod: fx_leak is 0x19 bytes in .*fixture_mod\.ko, 0x99 in the frame: the file is not the code that ran/,
    );
  });

  it('says which symbol or file is missing', async () => {
    const warnings: string[] = [];
    await withSymbolizer({ paths: [KO], onWarning: (m) => warnings.push(m) }, async (s) => {
      const [nosym, nofile] = await s.resolveFrames([
        { func: 'fx_gone', offset: 1, length: 2, module: 'fixture_mod' },
        { func: 'f', offset: 1, length: 2, module: 'other_mod' },
      ]);
      expect(nosym).toMatchObject({ status: 'unresolved', reason: 'no-symbol' });
      expect(nofile).toMatchObject({ status: 'unresolved', reason: 'no-file' });
      expect(await s.resolveFrame({ func: '0xffffffffa0000021' })).toMatchObject({ reason: 'not-a-symbol' });
    });
    expect(warnings.find((w) => w.startsWith('no debug info'))).toMatch(
      /^no debug info for module other_mod; looked in .*fixture_mod\.ko.*; give --symbols PATH$/,
    );
  });
});

describe('Symbolizer: kernel image frames', () => {
  it('finds the build tree’s vmlinux and names files as the tree does (mm/...)', async () => {
    const { offset, length } = returnOffset(VMLINUX, 'fx_kmalloc', 'fx_page_get');
    expect(length).toBeLessThanOrEqual(await spanOf(VMLINUX, 'fx_kmalloc'));
    await withSymbolizer({ paths: [TREE] }, async (s) => {
      const r = await s.resolveFrame({
        func: 'fx_kmalloc',
        offset,
        length: await spanOf(VMLINUX, 'fx_kmalloc'),
      });
      expect(located(r)).toEqual([
        `fx_slab_alloc_node mm/fx_slab.c:${lineOf('tree/mm/fx_slab.c', 'fx_slab_alloc_node')}`,
        `fx_kmalloc mm/fx_slab.c:${lineOf('tree/mm/fx_slab.c', 'fx_kmalloc')}`,
      ]);
      expect(r).toMatchObject({ elf: VMLINUX });
      expect((r as { section?: string }).section).toBeUndefined();
    });
  });

  it('looks up a faulting RIP (exact) and offset 0 as printed, other frames at offset - 1', async () => {
    const { offset } = returnOffset(VMLINUX, '_start', 'fx_kmalloc');
    const length = await spanOf(VMLINUX, '_start');
    const start = (await (await ElfFile.open(VMLINUX)).symbols()).lookup('_start')[0]!.value;
    await withSymbolizer({ paths: [VMLINUX] }, async (s) => {
      const [ret, exact, zero, entry] = await s.resolveFrames([
        { func: '_start', offset, length },
        { func: '_start', offset, length, exact: true },
        { func: '_start', offset: 0, length },
        { func: '_start' },
      ]);
      expect(ret).toMatchObject({
        address: start + BigInt(offset) - 1n,
        line: lineOf('tree/init/fx_main.c', '_start'),
      });
      expect(exact).toMatchObject({ address: start + BigInt(offset) });
      expect(zero).toMatchObject({ address: start });
      expect(entry).toMatchObject({ address: start, entry: true });
    });
  });

  for (const [name, file, section] of [
    ['module .text', KO, '.text'],
    ['module .init.text', KO, '.init.text'],
    ['kernel image', VMLINUX, undefined],
  ] as const) {
    it(`agrees with binutils addr2line on every byte of the ${name}`, async () => {
      const elf = await ElfFile.open(file);
      const syms = (await elf.symbols()).symbols.filter(
        (x) => x.type === 2 && (section === undefined || x.sectionName === section),
      );
      const queries: { frame: FrameQuery; address: bigint }[] = [];
      for (const sym of syms)
        for (let off = 0; off < sym.size; off++)
          queries.push({
            frame: {
              func: sym.name,
              offset: off,
              length: sym.span,
              exact: true,
              ...(elf.moduleName ? { module: elf.moduleName } : {}),
            },
            address: sym.value + BigInt(off),
          });
      const args = ['-f', '-i', '-e', file, ...(section ? ['-j', section] : [])];
      const ref = execFileSync('addr2line', [...args, ...queries.map((q) => `0x${q.address.toString(16)}`)], {
        encoding: 'utf8',
      });
      // binutils prints function/location pairs; -a is not used, so split by the outermost function
      const refLines = ref.trimEnd().split('\n');
      await withSymbolizer({ paths: [file] }, async (s) => {
        const ours = await s.resolveFrames(queries.map((q) => q.frame));
        const flat = ours.flatMap((r) =>
          r.status === 'resolved'
            ? r.locations.flatMap((l) => [l.function, `${l.file}:${l.line}`])
            : ['??', '??:0'],
        );
        const theirs = refLines.map((l, i) =>
          i % 2 === 1 ? tidySourcePath(l.replace(/ \(discriminator \d+\)$/, ''), [dirname(file)]) : l,
        );
        expect(flat).toEqual(theirs);
        expect(s.stats().processes).toBe(1);
      });
      expect(queries.length).toBeGreaterThan(20);
    });
  }
});

describe('Symbolizer: batching and caching', () => {
  it('uses one eu-addr2line per file and section, and asks each address once', async () => {
    const leak = returnOffset(KO, 'fx_leak', 'fx_alloc');
    const init = returnOffset(KO, 'fx_init', 'fx_leak');
    const km = returnOffset(VMLINUX, 'fx_kmalloc', 'fx_page_get');
    const [leakLen, initLen, kmLen] = [
      await spanOf(KO, 'fx_leak'),
      await spanOf(KO, 'fx_init'),
      await spanOf(VMLINUX, 'fx_kmalloc'),
    ];
    const frames: FrameQuery[] = [];
    for (let i = 0; i < 200; i++) {
      frames.push(
        { func: 'fx_leak', offset: leak.offset, length: leakLen, module: 'fixture_mod' },
        { func: 'fx_init', offset: init.offset, length: initLen, module: 'fixture_mod' },
        { func: 'fx_kmalloc', offset: km.offset, length: kmLen },
        { func: 'fx_kmalloc', offset: km.offset + (i % 3), length: kmLen },
      );
    }
    await withSymbolizer({ paths: [TREE, join(FIX, 'module')] }, async (s) => {
      const rs = await s.resolveFrames(frames);
      expect(rs.every((r) => r.status === 'resolved')).toBe(true);
      // twice: the second round comes from the cache
      await s.resolveFrames(frames);
      expect(s.stats()).toEqual({ frames: 1600, cachedFrames: 1600 - 5, addresses: 5, processes: 3 });
    });
  });
});

describe('Symbolizer: choosing the file', () => {
  /** A copy of the module whose build-id differs in its last byte (same code). */
  function rebuiltCopy(dir: string, flip: number): { path: string; buildId: string } {
    mkdirSync(dir, { recursive: true });
    const b = readFileSync(KO);
    // .note.gnu.build-id is at 0x40: 12 header bytes, "GNU\0", then the 20-byte id
    const idAt = 0x40 + 16;
    b[idAt + 19] = (b[idAt + 19]! ^ flip) & 0xff;
    const path = join(dir, 'fixture_mod.ko');
    writeFileSync(path, b);
    return { path, buildId: b.subarray(idAt, idAt + 20).toString('hex') };
  }

  it('prefers the file whose build-id is the running module’s, and warns when none is', async () => {
    const a = rebuiltCopy(join(tmp, 'a'), 1);
    const b = rebuiltCopy(join(tmp, 'b'), 2);
    const frame = { func: 'fx_leak', offset: 9, length: await spanOf(KO, 'fx_leak'), module: 'fixture_mod' };
    const modules = new Map([['fixture_mod', b.buildId]]);
    await withSymbolizer({ paths: [join(tmp, 'a'), join(tmp, 'b')], buildIds: { modules } }, async (s) => {
      expect(await s.resolveFrame(frame)).toMatchObject({ elf: b.path, buildId: b.buildId });
    });
    // a build-id printed in the frame (CONFIG_STACKTRACE_BUILD_ID) decides too
    await withSymbolizer({ paths: [join(tmp, 'a'), join(tmp, 'b')] }, async (s) => {
      expect(await s.resolveFrame({ ...frame, buildId: a.buildId })).toMatchObject({ elf: a.path });
    });
    const warnings: string[] = [];
    const other = new Map([['fixture_mod', 'ff'.repeat(20)]]);
    await withSymbolizer(
      {
        paths: [join(tmp, 'a'), join(tmp, 'b')],
        buildIds: { modules: other },
        onWarning: (m) => warnings.push(m),
      },
      async (s) => {
        expect(await s.resolveFrame(frame)).toMatchObject({ status: 'resolved', elf: a.path });
      },
    );
    expect(warnings).toEqual([
      `${a.path} has build-id ${a.buildId}, the running module fixture_mod ${'ff'.repeat(20)}: lines may be wrong`,
    ]);
  });

  /** A copy of the module whose fx_leak is `size` bytes long in the symbol table: another build, as far as lengths tell. */
  async function otherBuild(dir: string, size: number): Promise<string> {
    mkdirSync(dir, { recursive: true });
    const b = readFileSync(KO);
    const elf = await ElfFile.open(KO);
    const symtab = elf.sections.find((x) => x.name === '.symtab')!;
    const strtab = elf.sections[symtab.link]!;
    for (let at = symtab.offset; at < symtab.offset + symtab.size; at += 24) {
      const nameAt = strtab.offset + b.readUInt32LE(at);
      if (b.toString('latin1', nameAt, nameAt + 8) === 'fx_leak\0') b.writeBigUInt64LE(BigInt(size), at + 16);
    }
    const path = join(dir, 'fixture_mod.ko');
    writeFileSync(path, b);
    return path;
  }

  it('moves on to the next file when a frame shows the first is another build', async () => {
    const wrong = await otherBuild(join(tmp, 'wrong'), 0x40);
    expect((await (await ElfFile.open(wrong)).symbols()).lookup('fx_leak')[0]!.size).toBe(0x40);
    const right = join(tmp, 'right');
    mkdirSync(right, { recursive: true });
    copyFileSync(KO, join(right, 'fixture_mod.ko'));
    const caller = returnOffset(KO, 'fx_caller_a', 'fx_twin');
    const leak = returnOffset(KO, 'fx_leak', 'fx_alloc');
    const frames: FrameQuery[] = [
      // fits both files (same size in both): alone, the first file would do
      {
        func: 'fx_caller_a',
        offset: caller.offset,
        length: await spanOf(KO, 'fx_caller_a'),
        module: 'fixture_mod',
      },
      { func: 'fx_leak', offset: leak.offset, length: await spanOf(KO, 'fx_leak'), module: 'fixture_mod' },
    ];
    const warnings: string[] = [];
    await withSymbolizer(
      { paths: [join(tmp, 'wrong'), right], onWarning: (m) => warnings.push(m) },
      async (s) => {
        const first = await s.resolveFrames(frames);
        // fx_leak rejects the first file for the whole batch: fx_caller_a is never answered from it
        // (re-resolved from the right file, or left unresolved if it finished first)
        expect(first[1]).toMatchObject({ status: 'resolved', elf: join(right, 'fixture_mod.ko') });
        expect(first[0]!.status === 'resolved' ? first[0]!.elf : first[0]!.reason).toMatch(
          /^(?:mismatch|.*right\/fixture_mod\.ko)$/,
        );
        // from then on every frame comes from the file that fits
        const again = await s.resolveFrames(frames);
        expect(again.map((r) => r.status === 'resolved' && r.elf)).toEqual([
          join(right, 'fixture_mod.ko'),
          join(right, 'fixture_mod.ko'),
        ]);
      },
    );
    expect(warnings).toEqual([
      `fixture_mod: fx_leak is 0x40 bytes in ${wrong}, 0x20 in the frame: the file is not the code that ran (another build?); its frames are left unresolved`,
    ]);
  });

  it('searches the standard places of a kernel release, and /usr/lib/debug/.build-id', async () => {
    const root = join(tmp, 'root');
    const r = '6.99.0-test';
    mkdirSync(join(root, 'usr/lib/debug/boot'), { recursive: true });
    copyFileSync(VMLINUX, join(root, 'usr/lib/debug/boot', `vmlinux-${r}`));
    mkdirSync(join(root, 'lib/modules', r, 'kernel/drivers/fx'), { recursive: true });
    copyFileSync(KO, join(root, 'lib/modules', r, 'kernel/drivers/fx/fixture_mod.ko'));
    const km = returnOffset(VMLINUX, 'fx_kmalloc', 'fx_page_get');
    const frames: FrameQuery[] = [
      { func: 'fx_kmalloc', offset: km.offset, length: await spanOf(VMLINUX, 'fx_kmalloc') },
      { func: 'fx_leak', offset: 9, length: await spanOf(KO, 'fx_leak'), module: 'fixture_mod' },
    ];
    await withSymbolizer({ root, kernelRelease: r }, async (s) => {
      const [k, m] = await s.resolveFrames(frames);
      expect(k).toMatchObject({ status: 'resolved', elf: join(root, 'usr/lib/debug/boot', `vmlinux-${r}`) });
      expect(m).toMatchObject({
        status: 'resolved',
        elf: join(root, 'lib/modules', r, 'kernel/drivers/fx/fixture_mod.ko'),
      });
    });
    // by build-id alone, with no release
    const id = (await ElfFile.open(KO)).buildId!;
    mkdirSync(join(root, 'usr/lib/debug/.build-id', id.slice(0, 2)), { recursive: true });
    copyFileSync(KO, join(root, 'usr/lib/debug/.build-id', id.slice(0, 2), `${id.slice(2)}.debug`));
    await withSymbolizer({ root, buildIds: { modules: new Map([['fixture_mod', id]]) } }, async (s) => {
      expect(await s.resolveFrame(frames[1]!)).toMatchObject({ status: 'resolved', buildId: id });
    });
  });

  it('refuses --symbols paths that do not exist or are not ELF', async () => {
    await expect(Symbolizer.create({ paths: [join(tmp, 'nope')] })).rejects.toMatchObject({
      code: 'USAGE',
      message: expect.stringMatching(/nope: ENOENT$/),
    });
    await expect(Symbolizer.create({ paths: [join(FIX, 'prog', 'prog.c')] })).rejects.toMatchObject({
      code: 'BAD_INPUT',
    });
  });

  it('says how to install elfutils when eu-addr2line is missing', async () => {
    await withSymbolizer({ paths: [KO], tool: 'eu-addr2line-not-installed' }, async (s) => {
      const e = await s
        .resolveFrame({
          func: 'fx_leak',
          offset: 9,
          length: await spanOf(KO, 'fx_leak'),
          module: 'fixture_mod',
        })
        .catch((x: unknown) => x);
      expect(e).toBeInstanceOf(MemsleuthError);
      expect(e).toMatchObject({ code: 'UNAVAILABLE', hint: expect.stringContaining('elfutils') });
    });
  });
});

describe('tidySourcePath', () => {
  it('drops ./ and makes a path under the ELF’s directory (as given or resolved) relative', () => {
    expect(tidySourcePath('././mm/slub.c', ['/build'])).toBe('mm/slub.c');
    expect(tidySourcePath('/build/./include/linux/slab.h', ['/elsewhere'])).toBe(
      '/build/include/linux/slab.h',
    );
    expect(tidySourcePath('/real/mod/msl_leaky.c', ['/tmp/link', '/real/mod'])).toBe('msl_leaky.c');
    expect(tidySourcePath('/real/other/x.c', ['/real/mod'])).toBe('/real/other/x.c');
  });

  it('finds a module through a --symbols path that is a symbolic link', async () => {
    const link = join(tmp, 'module-link');
    symlinkSync(join(FIX, 'module'), link);
    const leak = returnOffset(KO, 'fx_leak', 'fx_alloc');
    await withSymbolizer({ paths: [link] }, async (s) => {
      const r = await s.resolveFrame({
        func: 'fx_leak',
        offset: leak.offset,
        length: await spanOf(KO, 'fx_leak'),
        module: 'fixture_mod',
      });
      expect(r).toMatchObject({
        status: 'resolved',
        file: 'fixture_mod.c',
        elf: join(link, 'fixture_mod.ko'),
      });
    });
  });
});

describe('Symbolizer: user space', () => {
  it('resolves file addresses of a program, inlines included', async () => {
    const prog = await ElfFile.open(PROG);
    const leak = (await prog.symbols()).lookup('leak')[0]!;
    const { offset } = returnOffset(PROG, 'leak', 'malloc@plt');
    await withSymbolizer({}, async (s) => {
      const [chain] = await s.resolveAddresses(PROG, [leak.value + BigInt(offset) - 1n]);
      expect(chain!.map((l) => `${l.function} ${l.file}:${l.line}`)).toEqual([
        `grab prog.c:${lineOf('prog/prog.c', 'grab')}`,
        `leak prog.c:${lineOf('prog/prog.c', 'leak')}`,
      ]);
    });
  });
});
