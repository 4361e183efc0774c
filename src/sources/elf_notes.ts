/**
 * ELF notes: the bytes of /sys/kernel/notes (the running kernel's note section),
 * /sys/module/<m>/notes/.note.gnu.build-id (one loaded module's), and the SHT_NOTE
 * sections of vmlinux and .ko files. Each note is
 *
 *   namesz u32, descsz u32, type u32, name (padded to 4), desc (padded to 4)
 *
 * in the machine's byte order. The build-id is the GNU note of type 3 (NT_GNU_BUILD_ID),
 * usually 20 bytes of SHA-1, printed as lowercase hex as `readelf -n` prints it.
 */
import { parseError } from '../model/errors.js';
import type { ParseOptions } from './text.js';

export interface ElfNote {
  /** Owner, e.g. `GNU` or `Linux` (without the trailing NUL). */
  name: string;
  type: number;
  desc: Buffer;
}

/** NT_GNU_BUILD_ID. */
export const NT_GNU_BUILD_ID = 3;

const align4 = (n: number) => (n + 3) & ~3;

/**
 * Parse a run of notes. `littleEndian` is the byte order of the ELF file (of this machine,
 * for the sysfs files). Trailing zero padding (sections are padded to their alignment) is
 * accepted; anything else that does not fit is a parse error.
 */
export function parseElfNotes(buf: Buffer, opts: ParseOptions & { littleEndian?: boolean } = {}): ElfNote[] {
  const file = opts.file ?? 'notes';
  const le = opts.littleEndian ?? true;
  const u32 = (at: number) => (le ? buf.readUInt32LE(at) : buf.readUInt32BE(at));
  const notes: ElfNote[] = [];
  let at = 0;
  while (at + 12 <= buf.length) {
    const namesz = u32(at);
    const descsz = u32(at + 4);
    const type = u32(at + 8);
    if (namesz === 0 && descsz === 0 && type === 0) break; // padding
    const nameAt = at + 12;
    const descAt = nameAt + align4(namesz);
    const end = descAt + align4(descsz);
    if (descAt + descsz > buf.length) {
      throw parseError(
        file,
        undefined,
        `an ELF note of ${namesz}+${descsz} bytes inside ${buf.length} bytes`,
        buf.subarray(at, at + 16).toString('hex'),
        { offset: at },
      );
    }
    const name = buf
      .subarray(nameAt, nameAt + namesz)
      .toString('latin1')
      .replace(/\0+$/, '');
    notes.push({ name, type, desc: buf.subarray(descAt, descAt + descsz) });
    at = end;
  }
  for (; at < buf.length; at++) {
    if (buf[at] !== 0) {
      throw parseError(file, undefined, 'an ELF note header (12 bytes)', buf.subarray(at).toString('hex'), {
        offset: at,
      });
    }
  }
  return notes;
}

/** The GNU build-id among notes, as lowercase hex; undefined when there is none. */
export function buildIdOf(notes: readonly ElfNote[]): string | undefined {
  const n = notes.find((x) => x.name === 'GNU' && x.type === NT_GNU_BUILD_ID && x.desc.length > 0);
  return n?.desc.toString('hex');
}
