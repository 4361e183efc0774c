import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI_BIN, REPO_ROOT } from '../../../test/paths.js';
import type { CommandSpec } from '../command.js';
import type { CommandContext } from '../context.js';
import { globalHelp, runCommand } from '../main.js';
import { COMMANDS } from './index.js';

const HERE = join(REPO_ROOT, 'src', 'cli', 'commands');

/** Relative imports a file loads when it is loaded: static imports and re-exports, not `import()`. */
function staticImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  const re = /^(?:import|export)\s(?!type\b)[^;]*?from\s*'(\.[^']*)'|^import\s*'(\.[^']*)'/gm;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const spec = (m[1] ?? m[2])!;
    out.push(resolve(dirname(file), spec).replace(/\.js$/, '.ts'));
  }
  return out;
}

function closure(file: string): Set<string> {
  const seen = new Set<string>();
  const todo = [file];
  while (todo.length) {
    const f = todo.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    todo.push(...staticImports(f));
  }
  return seen;
}

describe('the command list (commands/index.ts)', () => {
  it('names every command with its own path and summary, and loads it by that path', async () => {
    for (const entry of COMMANDS) {
      const spec = await entry.load();
      expect(spec.path).toEqual(entry.path);
      expect(spec.summary).toBe(entry.summary);
    }
  });

  it('lists every command defined in this folder, once', async () => {
    const listed = new Set(COMMANDS.map((c) => c.path.join(' ')));
    expect(listed.size).toBe(COMMANDS.length);
    const defined: string[] = [];
    for (const f of readdirSync(HERE)) {
      if (!f.endsWith('.ts') || f.endsWith('.test.ts') || f === 'index.ts') continue;
      const mod = (await import(`./${f.replace(/\.ts$/, '.js')}`)) as Record<string, unknown>;
      for (const v of Object.values(mod)) {
        const spec = v as Partial<CommandSpec>;
        if (spec && typeof spec === 'object' && Array.isArray(spec.path) && typeof spec.run === 'function')
          defined.push(spec.path.join(' '));
      }
    }
    expect([...new Set(defined)].sort()).toEqual([...listed].sort());
  });

  it('bin/memsleuth.js runs as its #! line says: env -S node with V8 flags this node accepts', () => {
    const first = readFileSync(CLI_BIN, 'utf8').split('\n', 1)[0]!;
    const m = /^#!\/usr\/bin\/env -S node((?: --[a-z-]+(?:=\d+)?)*)$/.exec(first);
    expect(m, first).not.toBeNull();
    const flags = m![1]!.trim().split(' ').filter(Boolean);
    expect(flags).toEqual([
      '--no-concurrent-recompilation',
      '--single-threaded-gc',
      '--max-semi-space-size=4',
    ]);
    // A flag node does not know would stop every command ("bad option").
    const probe = spawnSync(process.execPath, [...flags, '-e', 'process.stdout.write("ok")'], {
      encoding: 'utf8',
    });
    expect(probe.stderr).toBe('');
    expect(probe.stdout).toBe('ok');
    // Run the file itself, as an installed command is run (the kernel reads the #! line).
    const run = spawnSync(CLI_BIN, ['--version'], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^memsleuth \d/);
  });

  it('bin/memsleuth.js answers the global help and the version as the CLI does', async () => {
    expect(readFileSync(join(REPO_ROOT, 'dist', 'cli', 'help.txt'), 'utf8')).toBe(globalHelp());
    for (const args of [['--help'], ['-h'], ['help'], [], ['--help', 'ps'], ['--version'], ['-V']]) {
      let out = '';
      const write = (t: string) => {
        out += t;
        return true;
      };
      const sink = { write } as unknown as CommandContext['stdout'];
      const ctx = { stdout: sink, stderr: sink, cwd: REPO_ROOT, env: {} } as unknown as CommandContext;
      const code = await runCommand(args, ctx);
      const run = spawnSync(CLI_BIN, args, { encoding: 'utf8' });
      expect(run.stderr, args.join(' ')).toBe('');
      expect(run.stdout, args.join(' ')).toBe(out);
      expect(run.status, args.join(' ')).toBe(code);
    }
  });

  it('bin/memsleuth.js prints dist/cli/help.txt without the CLI, unless it is older than the command list', () => {
    // A tree with the bin, package.json, a help text and a command list, and no CLI.
    const dir = mkdtempSync(join(tmpdir(), 'memsleuth-bin-'));
    try {
      mkdirSync(join(dir, 'bin'));
      mkdirSync(join(dir, 'dist', 'cli', 'commands'), { recursive: true });
      for (const f of ['bin/memsleuth.js', 'bin/package.json', 'package.json'])
        copyFileSync(join(REPO_ROOT, f), join(dir, f));
      const help = join(dir, 'dist', 'cli', 'help.txt');
      const list = join(dir, 'dist', 'cli', 'commands', 'index.js');
      writeFileSync(help, 'the help\n');
      writeFileSync(list, '');
      utimesSync(list, new Date(1_000_000), new Date(1_000_000));
      const bin = join(dir, 'bin', 'memsleuth.js');
      const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
      expect(run('--help').stdout).toBe('the help\n');
      expect(run().status).toBe(2);
      expect(run('--version').stdout).toMatch(/^memsleuth \d+\.\d+\.\d+\n$/);
      // Any command goes to the CLI (not there).
      expect(run('ps').stderr).toMatch(/Cannot find module .*dist\/cli\/main\.js/);
      // A command list rebuilt after the help text: the CLI answers.
      utimesSync(help, new Date(500_000), new Date(500_000));
      const stale = run('--help');
      expect(stale.stdout).toBe('');
      expect(stale.stderr).toMatch(/Cannot find module .*dist\/cli\/main\.js/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('start-up (bin/memsleuth.js -> cli/main.ts) loads the command list and nothing else', () => {
    const loaded = [...closure(join(REPO_ROOT, 'src', 'cli', 'main.ts'))].map((f) =>
      relative(join(REPO_ROOT, 'src'), f),
    );
    expect(loaded.sort()).toEqual(['cli/commands/index.ts', 'cli/main.ts'].sort());
  });
});
