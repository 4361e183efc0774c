// Only the command list is loaded up front: `--help` and `--version` load nothing else, and a
// command its module, the argument parser and the error type (each module is about 2 ms of
// start-up here).
import { COMMANDS, type CommandEntry } from './commands/index.js';
import type { CommandContext } from './context.js';

/**
 * `memsleuth --help`. The build writes it to dist/cli/help.txt (scripts/build-help.mjs), which
 * bin/memsleuth.js prints without loading the CLI.
 */
export function globalHelp(): string {
  const lines = [
    'Usage: memsleuth <command> [options]',
    '',
    'Where did the memory go, and who is leaking it.',
    '',
    'Commands:',
  ];
  const w = Math.max(...COMMANDS.map((c) => c.path.join(' ').length)) + 4;
  for (const c of COMMANDS) lines.push(`  ${c.path.join(' ').padEnd(w)}${c.summary}`);
  lines.push('', 'Run `memsleuth <command> --help` for the options of one command.');
  return `${lines.join('\n')}\n`;
}

function findCommand(argv: string[]): { entry: CommandEntry; rest: string[] } | undefined {
  let best: { entry: CommandEntry; rest: string[] } | undefined;
  for (const entry of COMMANDS) {
    const n = entry.path.length;
    if (argv.length >= n && entry.path.every((w, i) => argv[i] === w)) {
      if (!best || n > best.entry.path.length) best = { entry, rest: argv.slice(n) };
    }
  }
  return best;
}

/**
 * Run one command line and return its exit code. Never calls process.exit, so tests
 * can call it with their own context. Exit codes: 0 ok, 1 findings/failure reported by
 * the command, 2 usage or input error, 70 internal error (a bug).
 */
export async function runCommand(argv: string[], ctx: CommandContext): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    ctx.stdout.write(globalHelp());
    return argv.length === 0 ? 2 : 0;
  }
  if (argv[0] === '--version' || argv[0] === '-V') {
    const { VERSION } = await import('./version.js');
    ctx.stdout.write(`memsleuth ${VERSION}\n`);
    return 0;
  }
  const found = findCommand(argv);
  if (!found) {
    const prefix = COMMANDS.filter((c) => c.path[0] === argv[0]);
    ctx.stderr.write(`memsleuth: unknown command "${argv.slice(0, 2).join(' ')}"\n`);
    if (prefix.length)
      ctx.stderr.write(`hint: ${prefix.map((c) => `memsleuth ${c.path.join(' ')}`).join(', ')}\n`);
    else ctx.stderr.write('hint: run `memsleuth --help` for the list of commands\n');
    return 2;
  }
  const { entry, rest } = found;
  try {
    if (ctx.ownsProcess) await entry.prepare?.(rest);
    // Only the command that runs is loaded (with its dependencies): start-up stays Node's own.
    const [spec, { commandHelp, parseCommandArgs }] = await Promise.all([
      entry.load(),
      import('./command.js'),
    ]);
    if (!spec.rawArgs && (rest.includes('--help') || rest.includes('-h'))) {
      ctx.stdout.write(commandHelp(spec));
      return 0;
    }
    if (spec.rawArgs) return await spec.run({ values: {}, positionals: rest, rawArgs: rest }, ctx);
    const { values, positionals } = parseCommandArgs(spec, rest);
    return await spec.run({ values, positionals, rawArgs: rest }, ctx);
  } catch (e) {
    const { isMemsleuthError } = await import('../model/errors.js');
    if (isMemsleuthError(e)) {
      ctx.stderr.write(`memsleuth: ${e.message}\n`);
      if (e.hint) ctx.stderr.write(`hint: ${e.hint}\n`);
      return 2;
    }
    ctx.stderr.write(
      `memsleuth: internal error (a bug, please report it):\n${(e as Error)?.stack ?? String(e)}\n`,
    );
    return 70;
  }
}

/** The only place that touches process.argv and the exit code. */
export async function runMain(): Promise<void> {
  const { FdOut } = await import('./fd_write.js');
  // A closed pipe (`memsleuth ... | head`) is not an error.
  const closed = () => process.exit(process.exitCode ?? 0);
  // Node's stdio streams are made on first use (their modules are a few milliseconds of start-up):
  // data goes to fd 1 without one, and stderr, stdin and the terminal checks make theirs only
  // when a command asks.
  const ctx: CommandContext = {
    stdout: new FdOut(1, closed),
    get stderr() {
      return process.stderr;
    },
    get stdin() {
      return process.stdin;
    },
    cwd: process.cwd(),
    env: process.env,
    get stdoutIsTTY() {
      return Boolean(process.stdout.isTTY);
    },
    get stderrIsTTY() {
      return Boolean(process.stderr.isTTY);
    },
    ownsProcess: true,
  };
  process.exitCode = await runCommand(process.argv.slice(2), ctx);
}
