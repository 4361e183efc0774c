import { describe, expect, it } from 'vitest';
import { expectParseError } from '../../test/parsers.js';
import { configEnabled, parseKernelConfig } from './kconfig.js';

describe('parseKernelConfig', () => {
  const text = [
    '#',
    '# Automatically generated file; DO NOT EDIT.',
    '# Linux/x86 6.18.44 Kernel Configuration',
    '#',
    'CONFIG_SLUB_DEBUG=y',
    '# CONFIG_PAGE_OWNER is not set',
    'CONFIG_DEBUG_KMEMLEAK_MEM_POOL_SIZE=16000',
    'CONFIG_ZRAM=m',
    'CONFIG_LOCALVERSION=""',
    '',
  ].join('\n');

  it('reads set, unset and module options', () => {
    const c = parseKernelConfig(text);
    expect(configEnabled(c, 'CONFIG_SLUB_DEBUG')).toBe(true);
    expect(configEnabled(c, 'CONFIG_ZRAM')).toBe(true);
    expect(configEnabled(c, 'CONFIG_PAGE_OWNER')).toBe(false);
    expect(configEnabled(c, 'CONFIG_DEBUG_KMEMLEAK')).toBeUndefined();
    expect(c.get('CONFIG_DEBUG_KMEMLEAK_MEM_POOL_SIZE')).toBe('16000');
  });

  it('names file and line of a line that is no config', () => {
    expectParseError(() => parseKernelConfig(`${text}MemTotal: 1 kB\n`, { file: 'config' }), {
      message: ['config:10', 'CONFIG_X=value', 'MemTotal'],
      file: 'config',
      line: 10,
    });
    expectParseError(() => parseKernelConfig('\n', { file: 'empty' }), {
      message: ['empty:1', 'a kernel configuration'],
      file: 'empty',
      line: 1,
    });
  });
});
