import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseErrorOf } from '../../test/parsers.js';
import { REPO_FIXTURES } from '../../test/paths.js';
import { buildIdOf, NT_GNU_BUILD_ID, parseElfNotes } from './elf_notes.js';

const FIX = join(REPO_FIXTURES, 'symbols');

/** The build-id `readelf -n` prints for a file: the independent reference. */
function readelfBuildId(path: string): string {
  const m = /Build ID: ([0-9a-f]+)/.exec(execFileSync('readelf', ['-n', path], { encoding: 'utf8' }));
  if (!m) throw new Error(`readelf -n ${path}: no build-id`);
  return m[1]!;
}

/** The bytes of a file's .note.gnu.build-id section, cut out with objcopy. */
function noteSection(path: string): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'memsleuth-note-'));
  try {
    const out = join(dir, 'note.bin');
    execFileSync('objcopy', ['-O', 'binary', '--only-section=.note.gnu.build-id', path, out]);
    return readFileSync(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('parseElfNotes', () => {
  it('reads /sys/kernel/notes of Linux 6.18: the build-id, Linux and Xen notes', () => {
    const notes = parseElfNotes(readFileSync(join(FIX, 'live-6.18', 'kernel-notes')), {
      file: 'kernel-notes',
    });
    expect(notes.map((n) => n.name)).toEqual(['GNU', 'Linux', 'Linux', 'Xen', 'Xen']);
    expect(notes[0]!.type).toBe(NT_GNU_BUILD_ID);
    const id = buildIdOf(notes);
    expect(id).toMatch(/^[0-9a-f]{40}$/);
    // LINUX_ELFNOTE_BUILD_SALT (0x100): a NUL-terminated string; Xen's notes after it
    expect(notes.map((n) => n.type)).toEqual([3, 0x101, 0x100, 0x13, 0x12]);
    expect(notes[2]!.desc.toString('latin1')).toMatch(/^[\x20-\x7e]+\0$/);
  });

  for (const file of ['module/fixture_mod.ko', 'tree/vmlinux', 'prog/prog']) {
    it(`gives the build-id readelf prints for ${file}`, () => {
      const path = join(FIX, file);
      expect(buildIdOf(parseElfNotes(noteSection(path), { file }))).toBe(readelfBuildId(path));
    });
  }

  it('reads big-endian notes', () => {
    const b = Buffer.alloc(12 + 4 + 4);
    b.writeUInt32BE(4, 0);
    b.writeUInt32BE(4, 4);
    b.writeUInt32BE(3, 8);
    b.write('GNU\0', 12, 'latin1');
    b.writeUInt32BE(0xdeadbeef, 16);
    expect(buildIdOf(parseElfNotes(b, { littleEndian: false }))).toBe('deadbeef');
  });

  it('accepts zero padding and rejects a truncated note, naming the offset', () => {
    expect(parseElfNotes(Buffer.alloc(16))).toEqual([]);
    const b = Buffer.alloc(20);
    b.writeUInt32LE(4, 0);
    b.writeUInt32LE(20, 4); // desc runs past the end
    b.writeUInt32LE(3, 8);
    const e = parseErrorOf(() => parseElfNotes(b, { file: 'notes' }));
    expect(e.message).toMatch(/^notes \(byte 0\): expected an ELF note of 4\+20 bytes inside 20 bytes/);
  });

  it('has no build-id when no GNU note of type 3 is there', () => {
    expect(buildIdOf([{ name: 'Linux', type: 3, desc: Buffer.from([1]) }])).toBeUndefined();
  });
});
