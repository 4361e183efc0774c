import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI_BIN, REPO_ROOT } from '../../../test/paths.js';
import type { CommandSpec } from '../command.js';
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
    const m = /^#!\/usr\/bin\/env -S node((?: --[a-z-]+)*)$/.exec(first);
    expect(m, first).not.toBeNull();
    const flags = m![1]!.trim().split(' ').filter(Boolean);
    expect(flags).toEqual(['--no-concurrent-recompilation', '--single-threaded-gc']);
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

  it('start-up (bin/memsleuth.js -> cli/main.ts) loads the command list and nothing else', () => {
    const loaded = [...closure(join(REPO_ROOT, 'src', 'cli', 'main.ts'))].map((f) =>
      relative(join(REPO_ROOT, 'src'), f),
    );
    expect(loaded.sort()).toEqual(['cli/commands/index.ts', 'cli/main.ts'].sort());
  });
});
