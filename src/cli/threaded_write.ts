import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { writeAll } from './fd_write.js';

/**
 * Writes to a file descriptor from a second thread, so that the bytes of one piece go
 * into the kernel (a write(2) into the page cache, about a second per GiB here) while the
 * caller builds the next piece. `write` copies its argument into one of `slots` pieces of
 * shared memory and returns; it waits only when every piece is still being written. The
 * first `directBytes` are written directly (a small output never starts a thread).
 * A write error is thrown by the next `write` or by `close`, as writeSync would throw it.
 * `close` waits until everything is written; it does not close `fd`.
 */
export class ThreadedWriter {
  private direct = 0;
  private worker: Worker | undefined;
  private port: MessagePort | undefined;
  /** [0] pieces handed over, [1] pieces written, [2] 1 once a write failed, [3] 1 when closing. */
  private ctl: Int32Array | undefined;
  private lens: Int32Array | undefined;
  private data: Uint8Array | undefined;
  private closed = false;

  constructor(
    private readonly fd: number,
    private readonly opts: { slotBytes?: number; slots?: number; directBytes?: number } = {},
  ) {}

  write(b: Uint8Array): void {
    if (this.closed) throw new Error('ThreadedWriter is closed');
    if (!this.worker && this.direct < (this.opts.directBytes ?? 16 << 20)) {
      this.direct += b.length;
      writeAll(this.fd, b);
      return;
    }
    if (!this.worker) this.start();
    const ctl = this.ctl!;
    const slots = this.lens!.length;
    const slotBytes = this.data!.length / slots;
    for (let off = 0; off < b.length; ) {
      this.failed();
      const handed = Atomics.load(ctl, 0);
      const written = Atomics.load(ctl, 1);
      if (handed - written === slots) {
        Atomics.wait(ctl, 1, written);
        continue;
      }
      const slot = handed % slots;
      const n = Math.min(slotBytes, b.length - off);
      this.data!.set(b.subarray(off, off + n), slot * slotBytes);
      this.lens![slot] = n;
      Atomics.store(ctl, 0, handed + 1);
      Atomics.notify(ctl, 0);
      off += n;
    }
  }

  /** Wait until every piece is written and stop the thread; throws the first write error. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const ctl = this.ctl;
    if (!ctl) return;
    Atomics.store(ctl, 3, 1);
    Atomics.notify(ctl, 0);
    for (;;) {
      const written = Atomics.load(ctl, 1);
      if (written === Atomics.load(ctl, 0)) break;
      Atomics.wait(ctl, 1, written);
    }
    void this.worker!.terminate();
    this.failed();
    this.port!.close();
  }

  private start(): void {
    const slots = this.opts.slots ?? 4;
    const slotBytes = this.opts.slotBytes ?? 1 << 20;
    this.ctl = new Int32Array(new SharedArrayBuffer(16));
    this.lens = new Int32Array(new SharedArrayBuffer(4 * slots));
    this.data = new Uint8Array(new SharedArrayBuffer(slots * slotBytes));
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.worker = new Worker(WORKER, {
      eval: true,
      workerData: { fd: this.fd, ctl: this.ctl, lens: this.lens, data: this.data, port: port2 },
      transferList: [port2],
    });
    this.worker.unref();
  }

  /** Throw the error the thread met, if any (with the code and message writeSync gave it). */
  private failed(): void {
    if (Atomics.load(this.ctl!, 2) === 0) return;
    const m = receiveMessageOnPort(this.port!)?.message as
      | { message: string; code?: string; errno?: number; syscall?: string }
      | undefined;
    const e = new Error(m?.message ?? 'write failed') as NodeJS.ErrnoException;
    if (m?.code) e.code = m.code;
    if (m?.errno !== undefined) e.errno = m.errno;
    if (m?.syscall) e.syscall = m.syscall;
    // Reported once: the thread stops, the pieces after the error are dropped.
    Atomics.store(this.ctl!, 2, 0);
    Atomics.store(this.ctl!, 3, 1);
    this.closed = true;
    void this.worker!.terminate();
    this.port!.close();
    throw e;
  }
}

/**
 * The writing thread: waits for a piece, writes it, says so. After an error it reports
 * it once and drops the remaining pieces (the caller throws at its next call).
 */
const WORKER = `
const { workerData } = require('node:worker_threads');
const { writeSync } = require('node:fs');
const { fd, ctl, lens, data, port } = workerData;
const nap = new Int32Array(new SharedArrayBuffer(4));
const slots = lens.length;
const slotBytes = data.length / slots;
let failed = false;
for (;;) {
  const written = Atomics.load(ctl, 1);
  const handed = Atomics.load(ctl, 0);
  if (written === handed) {
    if (Atomics.load(ctl, 3) === 1) break;
    Atomics.wait(ctl, 0, handed, 1000);
    continue;
  }
  const slot = written % slots;
  if (!failed) {
    try {
      const n = lens[slot];
      let off = 0;
      const b = data.subarray(slot * slotBytes, slot * slotBytes + n);
      while (off < n) {
        try {
          off += writeSync(fd, b, off, n - off);
        } catch (e) {
          // A full non-blocking pipe (stdout): wait for the reader, as writeAll does (the
          // thread is eval'd from this text: it cannot import writeAll).
          if (e.code !== 'EAGAIN') throw e;
          Atomics.wait(nap, 0, 0, 2);
        }
      }
    } catch (e) {
      failed = true;
      port.postMessage({ message: e.message, code: e.code, errno: e.errno, syscall: e.syscall });
      Atomics.store(ctl, 2, 1);
    }
  }
  Atomics.store(ctl, 1, written + 1);
  Atomics.notify(ctl, 1);
}
port.close();
`;
