import { describe, expect, it } from 'vitest';
import { MemsleuthError } from '../model/errors.js';
import { kmsgRecordToLines, readJournal, readKernelLog, readKmsg } from './kernel_log.js';

describe('kmsgRecordToLines', () => {
  it('turns a record into dmesg lines, without its dictionary', () => {
    expect(kmsgRecordToLines('4,1234,2771316390,-;Mem-Info:\n SUBSYSTEM=mem\n DEVICE=c1:1\n')).toEqual([
      '[ 2771.316390] Mem-Info:',
    ]);
  });

  it('splits an escaped multi-line record (5.x memcg stats) into one line each', () => {
    expect(kmsgRecordToLines('6,9,5000001,-;anon 4096\\x0afile 0\\x0a')).toEqual([
      '[    5.000001] anon 4096',
      '[    5.000001] file 0',
      '[    5.000001] ',
    ]);
  });

  it('keeps the leading space of trace lines and ignores a caller field', () => {
    expect(kmsgRecordToLines('4,10,12,c,caller=T29; dump_stack_lvl+0x52/0x61\n')).toEqual([
      '[    0.000012]  dump_stack_lvl+0x52/0x61',
    ]);
  });
});

describe('reading this machine’s kernel log', () => {
  it('reads the whole /dev/kmsg ring without blocking, oldest record first', () => {
    const log = readKmsg();
    expect(log.origin).toBe('/dev/kmsg');
    expect(log.records).toBeGreaterThan(10);
    expect(log.text.split('\n')[0]).toMatch(/^\[\s*\d+\.\d{6}\] /);
    expect(log.text).toContain('Linux version');
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
