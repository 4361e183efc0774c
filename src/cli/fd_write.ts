import { createRequire } from 'node:module';

// Node's built-ins through require, not `import`, on the everyday commands' start-up path: for an
// ES import Node builds a module that reads every export of the built-in, lazy getters too
// (node:fs's ReadStream loads Node's twenty stream modules): 1.3-3 ms of a 50 ms `ps`.
const nodeRequire = createRequire(import.meta.url);
const { writeSync } = nodeRequire('node:fs') as typeof import('node:fs');

/** For sleeping while a non-blocking pipe is full. */
const NAP = new Int32Array(new SharedArrayBuffer(4));

/**
 * All of `b` to `fd`. A pipe that Node made non-blocking (stdout) answers EAGAIN while it is
 * full: then wait 2 ms and go on, as a blocking write would wait for the reader.
 */
export function writeAll(fd: number, b: Uint8Array): void {
  let off = 0;
  while (off < b.length) {
    try {
      off += writeSync(fd, b, off, b.length - off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      Atomics.wait(NAP, 0, 0, 2);
    }
  }
}

/**
 * The binary's stdout: each piece written to the descriptor at once, as Node's stream for a file
 * or a pipe does on Linux, but without the stream. Making process.stdout loads Node's stream
 * modules (and, on a terminal, tty and net): about 3 ms of a 50 ms `ps`. A reader that went
 * away (EPIPE) calls `onClosed`; `write` never asks to wait for 'drain'.
 */
export class FdOut {
  constructor(
    private readonly fd: number,
    private readonly onClosed: () => void,
  ) {}

  write(chunk: string | Uint8Array): boolean {
    try {
      writeAll(this.fd, typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EPIPE') throw e;
      this.onClosed();
    }
    return true;
  }

  once(_event: 'drain', _listener: () => void): this {
    return this; // never emitted: every write is done when it returns
  }
}
