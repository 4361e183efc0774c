import { Readable, Writable } from 'node:stream';
import { runCommand } from '../../src/cli/main.js';

export interface InProcessResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run one command line in this process with captured streams (and `stdin` text), as the CLI would. */
export async function runInProcess(argv: string[], opts: { stdin?: string } = {}): Promise<InProcessResult> {
  let stdout = '';
  let stderr = '';
  const sink = (add: (s: string) => void) =>
    new Writable({
      write(chunk, _enc, cb) {
        add(String(chunk));
        cb();
      },
    });
  const code = await runCommand(argv, {
    stdout: sink((s) => {
      stdout += s;
    }),
    stderr: sink((s) => {
      stderr += s;
    }),
    stdin: Readable.from(opts.stdin === undefined ? [] : [Buffer.from(opts.stdin)]),
    cwd: process.cwd(),
    env: { NO_COLOR: '1' },
    stdoutIsTTY: false,
    stderrIsTTY: false,
  });
  return { code, stdout, stderr };
}
