import { describe, expect, it } from 'vitest';
import { expectParseError, fixture } from '../../test/parsers.js';
import { KernelSymbols } from './kallsyms.js';

describe('/proc/kallsyms', () => {
  const syms = KernelSymbols.parse(fixture('trace-6.18', 'kallsyms'));

  it('turns an address into func+offset/length, the length running to the next symbol', () => {
    // rcu_do_batch+0x1b7/0x530, as the 6.18 trace printed it.
    expect(syms.frame(0xffffffff81409700n + 0x1b7n)).toEqual({
      func: 'rcu_do_batch',
      offset: 0x1b7,
      length: 0x530,
    });
  });

  it('names module symbols and leaves unknown addresses as they are', () => {
    const mod = KernelSymbols.parse(
      'ffffffffc0002000 t msl_slab_leak\t[msl_leaky]\nffffffffc0002060 t msl_page_leak\t[msl_leaky]\nffffffffc0002100 d msl_sink\t[msl_leaky]\n',
    );
    expect(mod.frame(0xffffffffc000201dn)).toEqual({
      func: 'msl_slab_leak',
      offset: 0x1d,
      length: 0x60,
      module: 'msl_leaky',
    });
    expect(mod.frame(0x1000n)).toEqual({ func: '0x1000' });
    expect(mod.size).toBe(2);
  });

  it('refuses a table whose addresses kptr_restrict hid', () => {
    expectParseError(
      () => KernelSymbols.parse('0000000000000000 T _stext\n0000000000000000 t foo\n', { file: 'k' }),
      {
        message: ['all addresses are 0'],
      },
    );
  });
});
