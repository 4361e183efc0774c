import { closeSync, constants, openSync, readSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MemsleuthError } from '../model/errors.js';
import { parseKmsgRecord, readJournal, readKernelLog, readKmsg } from './kernel_log.js';

describe('parseKmsgRecord: lines', () => {
  it('turns a record into dmesg lines, without its dictionary', () => {
    expect(parseKmsgRecord('4,1234,2771316390,-;Mem-Info:\n SUBSYSTEM=mem\n DEVICE=c1:1\n').lines).toEqual([
      '[ 2771.316390] Mem-Info:',
    ]);
  });

  it('splits an escaped multi-line record (5.x memcg stats) into one line each', () => {
    expect(parseKmsgRecord('6,9,5000001,-;anon 4096\\x0afile 0\\x0a').lines).toEqual([
      '[    5.000001] anon 4096',
      '[    5.000001] file 0',
      '[    5.000001] ',
    ]);
  });

  it('keeps the leading space of trace lines and ignores a caller field', () => {
    expect(parseKmsgRecord('4,10,12,c,caller=T29; dump_stack_lvl+0x52/0x61\n').lines).toEqual([
      '[    0.000012]  dump_stack_lvl+0x52/0x61',
    ]);
  });
});

describe('parseKmsgRecord: sequence number', () => {
  it('reads the sequence number, undefined for a malformed record', () => {
    expect(parseKmsgRecord('6,85,81025,-;pvm-pv: x').seq).toBe(85);
    expect(parseKmsgRecord('4,10,12,c,caller=T29; x').seq).toBe(10);
    expect(parseKmsgRecord('6;no fields').seq).toBeUndefined();
    expect(parseKmsgRecord('6,x1,2,-;bad').seq).toBeUndefined();
  });
});

describe('reading this machine’s kernel log', () => {
  /** The sequence number of the oldest record /dev/kmsg holds now, read apart from readKmsg. */
  function oldestSeq(): number {
    const fd = openSync('/dev/kmsg', constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const buf = Buffer.alloc(8192);
      for (;;) {
        try {
          const n = readSync(fd, buf, 0, buf.length, null);
          const m = /^\d+,(\d+),/.exec(buf.toString('latin1', 0, n));
          if (!m) throw new Error(`unexpected /dev/kmsg record: ${buf.toString('latin1', 0, n)}`);
          return Number(m[1]);
        } catch (e) {
          // Overwritten between open and read: the next read starts at the oldest left.
          if ((e as NodeJS.ErrnoException).code !== 'EPIPE') throw e;
        }
      }
    } finally {
      closeSync(fd);
    }
  }

  it('reads the whole /dev/kmsg ring without blocking, oldest record first', () => {
    // The ring only moves forward: the oldest record before the read and after it bound the
    // first one read. Other tests fill the ring with OOM reports, so the boot's first record
    // ("Linux version") is only there while nothing has been overwritten.
    const before = oldestSeq();
    const log = readKmsg();
    const after = oldestSeq();
    expect(log.origin).toBe('/dev/kmsg');
    expect(log.records).toBeGreaterThan(10);
    expect(log.text.split('\n')[0]).toMatch(/^\[\s*\d+\.\d{6}\] /);
    const ring = log.ring!;
    expect(ring.firstSeq).toBeGreaterThanOrEqual(before);
    expect(ring.firstSeq).toBeLessThanOrEqual(after);
    // Nothing skipped between the first and the last record unless the ring overtook the read.
    if (!log.lost) expect(ring.lastSeq - ring.firstSeq + 1).toBe(log.records);
    if (ring.firstSeq === 0) expect(log.text).toContain('Linux version');
  });

  it('a missing device is an IO error with a hint', () => {
    let err: unknown;
    try {
      readKmsg('/nonexistent/kmsg');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MemsleuthError);
    expect((err as MemsleuthError).code).toBe('IO');
    expect((err as MemsleuthError).hint).toContain('dmesg > FILE');
  });

  it('a journal that cannot run or has no kernel messages is UNAVAILABLE, never empty', async () => {
    await expect(readJournal('0', '/nonexistent/journalctl')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await expect(
      readKernelLog({ source: 'journal', journalctl: '/nonexistent/journalctl' }),
    ).rejects.toBeInstanceOf(MemsleuthError);
  });

  it('auto reads /dev/kmsg when it can', async () => {
    expect((await readKernelLog()).origin).toBe('/dev/kmsg');
  });
});
