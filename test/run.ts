import { PassThrough, Readable } from 'node:stream';
import { runCommand } from '../src/cli/main.js';
import type { CliResult } from './e2e/cli.js';

/**
 * Run one command line in this process through `runCommand`, with captured streams: what the
 * logic tests use (the vitest way). `runCli` (test/e2e/cli.ts) spawns the built binary, for
 * the few tests about the binary itself.
 */
export async function cli(
  args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string; stderrIsTTY?: boolean } = {},
): Promise<CliResult> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  stdout.on('data', (c: Buffer) => out.push(c));
  stderr.on('data', (c: Buffer) => err.push(c));
  const status = await runCommand(args, {
    stdout,
    stderr,
    stdin: Readable.from(opts.input === undefined ? [] : [Buffer.from(opts.input)]),
    cwd: opts.cwd ?? process.cwd(),
    env: { ...process.env, NO_COLOR: '1', ...opts.env },
    stdoutIsTTY: false,
    stderrIsTTY: opts.stderrIsTTY ?? false,
  });
  stdout.end();
  stderr.end();
  return { status, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}
