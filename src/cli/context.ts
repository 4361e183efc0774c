import type { Writable } from 'node:stream';

/**
 * Where a command writes its data: a Node stream (tests pass their own), or the binary's direct
 * writer to fd 1 (fd_write.ts), whose writes never ask to wait.
 */
export interface Out {
  write(chunk: string | Uint8Array): boolean;
  once(event: 'drain', listener: () => void): unknown;
}

/** What a command may touch. Tests pass their own streams and environment. */
export interface CommandContext {
  stdout: Out;
  stderr: Writable;
  /** Standard input, for `-` arguments. */
  stdin: NodeJS.ReadableStream;
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** stdout is a terminal (tables may use colour). */
  stdoutIsTTY: boolean;
  /** stderr is a terminal (progress lines are shown). */
  stderrIsTTY: boolean;
  /**
   * The command has the process to itself (the binary, not a caller running commands in its own
   * process): it may tune process-wide settings such as V8's flags.
   */
  ownsProcess?: boolean;
}

/** Colour only on a terminal, and never with NO_COLOR, TERM=dumb or CI. */
export function useColor(ctx: CommandContext): boolean {
  const env = ctx.env;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.TERM === 'dumb' || env.CI) return false;
  if (env.FORCE_COLOR) return true;
  return ctx.stdoutIsTTY;
}

export function write(stream: Out, text: string): void {
  stream.write(text.endsWith('\n') || text === '' ? text : `${text}\n`);
}

/** A progress reporter that draws one line on a TTY stderr and is silent otherwise. */
export function progress(ctx: CommandContext): { update(line: string): void; done(): void } {
  if (!ctx.stderrIsTTY) return { update() {}, done() {} };
  let last = 0;
  let shown = false;
  return {
    update(line: string) {
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      shown = true;
      ctx.stderr.write(`\r\x1b[K${line}`);
    },
    done() {
      if (shown) ctx.stderr.write('\r\x1b[K');
    },
  };
}
