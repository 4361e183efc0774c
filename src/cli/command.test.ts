import { describe, expect, it } from 'vitest';
import { isMemsleuthError } from '../model/errors.js';
import { defineCommand, maxPositionals, type OptionSpec, parseCommandArgs } from './command.js';

describe('parseCommandArgs', () => {
  const spec = (args?: string) =>
    defineCommand({
      path: ['demo'],
      summary: 'a command',
      ...(args !== undefined ? { args } : {}),
      options: { json: { type: 'boolean', description: 'JSON' } },
      run: async () => 0,
    });
  const error = (args: string | undefined, argv: string[]) => {
    try {
      parseCommandArgs(spec(args), argv);
    } catch (e) {
      if (isMemsleuthError(e)) return `${e.code}: ${e.message}`;
      throw e;
    }
    return undefined;
  };

  it('allows as many arguments as the usage line names, any number after a word ending in ...', () => {
    expect(maxPositionals(undefined)).toBe(0);
    expect(maxPositionals('[SNAPSHOT]')).toBe(1);
    expect(maxPositionals('BEFORE AFTER')).toBe(2);
    expect(maxPositionals('PID... [SNAPSHOT]')).toBe(Number.POSITIVE_INFINITY);
    expect(maxPositionals('[FILE|SNAPSHOT...]')).toBe(Number.POSITIVE_INFINITY);
    expect(parseCommandArgs(spec('[SNAPSHOT]'), ['s', '--json'])).toEqual({
      values: { json: true },
      positionals: ['s'],
    });
    expect(parseCommandArgs(spec('PID... [SNAPSHOT]'), ['1', '2', '3', 's']).positionals).toEqual([
      '1',
      '2',
      '3',
      's',
    ]);
  });

  it('names the option a lone file or process number belongs to', () => {
    const withOptions = (options: Record<string, OptionSpec>) =>
      defineCommand({ path: ['demo'], summary: 'a command', options, run: async () => 0 });
    const hint = (options: Record<string, OptionSpec>, argv: string[]) => {
      try {
        parseCommandArgs(withOptions(options), argv);
      } catch (e) {
        if (isMemsleuthError(e)) return e.hint;
        throw e;
      }
      return undefined;
    };
    const db: OptionSpec = { type: 'string', valueName: 'FILE', description: 'database' };
    const pid: OptionSpec = { type: 'string', valueName: 'PID', description: 'process' };
    expect(hint({ db, pid }, ['x.db'])).toBe('did you mean --db FILE? see `memsleuth demo --help`');
    expect(hint({ db, pid }, ['1234'])).toBe('did you mean --pid PID? see `memsleuth demo --help`');
    expect(hint({ db }, ['1234'])).toBe('see `memsleuth demo --help`');
    expect(hint({ pid }, ['x.db'])).toBe('see `memsleuth demo --help`');
  });

  it('refuses arguments beyond them instead of ignoring them', () => {
    expect(error(undefined, ['x.db'])).toBe('USAGE: demo takes no arguments, got x.db');
    expect(error('[SNAPSHOT]', ['a', 'b', 'c'])).toBe(
      'USAGE: demo takes [SNAPSHOT], got 3 arguments (b c too many)',
    );
    expect(error('BEFORE AFTER', ['a', 'b'])).toBeUndefined();
    expect(error('BEFORE AFTER', ['a', 'b', '--json', 'c'])).toBe(
      'USAGE: demo takes BEFORE AFTER, got 3 arguments (c too many)',
    );
  });
});
