import { spawn } from 'node:child_process';
import { CLI_BIN } from './paths.js';

/** A `memsleuth exporter` process (the built CLI) serving on a loopback port it picked. */
export interface SpawnedExporter {
  /** host:port, for a scrape config. */
  address: string;
  url: string;
  pid: number;
  stderr(): string;
  /** SIGTERM and wait; resolves to the exit code. */
  stop(): Promise<number | null>;
}

export async function spawnExporter(args: string[]): Promise<SpawnedExporter> {
  const child = spawn(process.execPath, [CLI_BIN, 'exporter', '--listen', '127.0.0.1:0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
  });
  let err = '';
  child.stderr.on('data', (b: Buffer) => {
    err += b.toString();
  });
  child.stdout.resume();
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const code = await exited;
    clearTimeout(t);
    return code;
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    const m = /serving http:\/\/(127\.0\.0\.1:\d+)\/metrics/.exec(err);
    if (m) return { address: m[1]!, url: `http://${m[1]}`, pid: child.pid!, stderr: () => err, stop };
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`exporter ${args.join(' ')} did not start:\n${err}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
