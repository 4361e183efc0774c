import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { writeAll } from './fd_write.js';

/**
 * Writes to a file descriptor from a second thread, so that the bytes of one piece go
 * into the kernel (a write(2) into the page cache, about a second per GiB here) while the
 * caller builds the next piece. A piece is one of at most `slots` buffers of `slotBytes`,
 * handed to the thread without a copy (the buffer is transferred, and handed back once
 * written); the caller waits only when every buffer is still being written. A caller that
 * builds its output itself builds it in those buffers (lend, handOver); `write` copies its
 * argument into them. The first `directBytes` are written directly (a small output never
 * starts a thread).
 *
 * The bytes are not put in shared memory: V8 copies into a SharedArrayBuffer with relaxed
 * atomic stores, about 2.5 times slower than into a buffer of one thread (2.7-3.1 against
 * 6.6-8.4 GB/s here for pieces of 400 bytes), which cost the page_owner sort's output more
 * than the copy it saved.
 *
 * With `oneThread()` (called before the output is big enough to start the thread), every
 * piece is written from the calling thread: a process whose cores are busy gains nothing from
 * a second thread, and that thread's isolate costs about 10 MB (the page_owner sort's output of
 * 952 MB from one thread: 4.23-4.90 s against 3.93-4.75 s with the thread, 5 alternating runs,
 * at 124-126 MB against 136 MB).
 *
 * A write error is thrown by the next `lend`, `handOver`, `write` or by `close`, as
 * writeSync would throw it. `close` waits until everything is written; it does not close `fd`.
 */
export class ThreadedWriter {
  private direct = 0;
  private worker: Worker | undefined;
  private port: MessagePort | undefined;
  /** [0] pieces handed over, [1] pieces written, [2] 1 when closing. */
  private ctl: Int32Array | undefined;
  /** Buffers written and handed back, for the next pieces. */
  private readonly free: Buffer[] = [];
  /** Buffers made so far (at most `slots`). */
  private made = 0;
  /** The buffer lend() gave out, until handOver, lend, write or close. */
  private lent: Buffer | undefined;
  /** `lent` is `own`, written directly (the first `directBytes`). */
  private lentDirect = false;
  private own: Buffer | undefined;
  private closed = false;
  /** Bytes handed to the thread. */
  private sent = 0;
  /** oneThread() was called. */
  private single = false;

  constructor(
    private readonly fd: number,
    private readonly opts: {
      slotBytes?: number;
      slots?: number;
      directBytes?: number;
    } = {},
  ) {}

  /** Every piece from now on is written from the calling thread (see the class). */
  oneThread(): void {
    this.single = true;
  }

  /** Bytes written, or handed to the thread to write. */
  get bytes(): number {
    return this.direct + this.sent;
  }

  private get slotBytes(): number {
    return this.opts.slotBytes ?? 1 << 20;
  }

  private get directing(): boolean {
    return !this.worker && (this.single || this.direct < (this.opts.directBytes ?? 16 << 20));
  }

  /**
   * The buffer to build the next piece in (`slotBytes` long): `handOver(n)` writes its first
   * n bytes without copying them. Waits while every buffer is still being written. The
   * buffer is the caller's until the next handOver, lend, write or close.
   */
  lend(): Buffer {
    if (this.closed) throw new Error('ThreadedWriter is closed');
    if (this.directing) {
      this.own ??= Buffer.from(new ArrayBuffer(this.slotBytes));
      this.lentDirect = true;
      this.lent = this.own;
      return this.own;
    }
    if (!this.worker) this.start();
    this.endLend();
    this.lentDirect = false;
    this.lent = this.take();
    return this.lent;
  }

  /** A buffer lent and not handed over is free again. */
  private endLend(): void {
    if (this.lent && !this.lentDirect) this.free.push(this.lent);
    this.lent = undefined;
  }

  /** Writes the first `n` bytes of the buffer lend() gave (and ends the lend). */
  handOver(n: number): void {
    const b = this.lent;
    if (!b) throw new Error('ThreadedWriter.handOver without lend');
    if (!(n >= 0 && n <= b.length)) throw new RangeError(`handOver(${n}) of a ${b.length}-byte buffer`);
    this.lent = undefined;
    if (this.lentDirect) {
      this.direct += n;
      writeAll(this.fd, b.subarray(0, n));
      return;
    }
    this.send(b, n);
  }

  /** Writes `b` (copied: the caller may reuse it when this returns). */
  write(b: Uint8Array): void {
    if (this.closed) throw new Error('ThreadedWriter is closed');
    this.endLend();
    if (this.directing) {
      this.direct += b.length;
      writeAll(this.fd, b);
      return;
    }
    if (!this.worker) this.start();
    for (let off = 0; off < b.length; ) {
      const buf = this.take();
      const n = Math.min(buf.length, b.length - off);
      buf.set(b.subarray(off, off + n), 0);
      this.send(buf, n);
      off += n;
    }
  }

  /** Wait until every piece is written and stop the thread; throws the first write error. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.lent = undefined;
    const ctl = this.ctl;
    if (!ctl) return;
    Atomics.store(ctl, 2, 1);
    Atomics.notify(ctl, 0);
    for (;;) {
      const written = Atomics.load(ctl, 1);
      if (written === Atomics.load(ctl, 0)) break;
      Atomics.wait(ctl, 1, written);
    }
    try {
      this.drain();
    } finally {
      this.stop();
    }
  }

  private start(): void {
    this.ctl = new Int32Array(new SharedArrayBuffer(16));
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.worker = new Worker(WORKER, {
      eval: true,
      workerData: { fd: this.fd, ctl: this.ctl, port: port2 },
      transferList: [port2],
    });
    this.worker.unref();
  }

  private stop(): void {
    void this.worker!.terminate();
    this.port!.close();
  }

  /** A free buffer: one handed back, a new one while fewer than `slots` exist, else wait. */
  private take(): Buffer {
    const ctl = this.ctl!;
    for (;;) {
      // Read before draining: a buffer handed back after the drain changes it, so the wait
      // below returns at once.
      const written = Atomics.load(ctl, 1);
      this.drain();
      const b = this.free.pop();
      if (b) return b;
      if (this.made < (this.opts.slots ?? 4)) {
        this.made++;
        return Buffer.from(new ArrayBuffer(this.slotBytes));
      }
      Atomics.wait(ctl, 1, written);
    }
  }

  /** Hands the first `n` bytes of `b` (a buffer from take) to the thread. */
  private send(b: Buffer, n: number): void {
    this.drain();
    const ctl = this.ctl!;
    // The message is queued before the count says so: the thread finds it when it looks.
    const ab = b.buffer as ArrayBuffer;
    this.sent += n;
    this.port!.postMessage({ buf: ab, n }, [ab]);
    Atomics.add(ctl, 0, 1);
    Atomics.notify(ctl, 0);
  }

  /** Takes back the written buffers; throws the error the thread met, if any. */
  private drain(): void {
    for (;;) {
      const m = receiveMessageOnPort(this.port!)?.message as
        | { buf: ArrayBuffer }
        | { error: { message: string; code?: string; errno?: number; syscall?: string } }
        | undefined;
      if (!m) return;
      if ('buf' in m) {
        this.free.push(Buffer.from(m.buf));
        continue;
      }
      const e = new Error(m.error.message) as NodeJS.ErrnoException;
      if (m.error.code) e.code = m.error.code;
      if (m.error.errno !== undefined) e.errno = m.error.errno;
      if (m.error.syscall) e.syscall = m.error.syscall;
      // Reported once: the thread stops, the pieces after the error are dropped.
      if (!this.closed) {
        this.closed = true;
        this.stop();
      }
      throw e;
    }
  }
}

/**
 * The writing thread: waits for a piece, writes it, hands its buffer back, says so. After an
 * error it reports it once and drops the remaining pieces (the caller throws at its next call).
 */
const WORKER = `
const { workerData, receiveMessageOnPort } = require('node:worker_threads');
const { writeSync } = require('node:fs');
const { fd, ctl, port } = workerData;
const nap = new Int32Array(new SharedArrayBuffer(4));
let failed = false;
/** The first error, reported once: the pieces after it are dropped. */
function fail(e) {
  failed = true;
  port.postMessage({ error: { message: e.message, code: e.code, errno: e.errno, syscall: e.syscall } });
}
for (;;) {
  const written = Atomics.load(ctl, 1);
  const handed = Atomics.load(ctl, 0);
  if (written === handed) {
    if (Atomics.load(ctl, 2) === 1) break;
    Atomics.wait(ctl, 0, handed, 1000);
    continue;
  }
  const { buf, n } = receiveMessageOnPort(port).message;
  if (!failed) {
    try {
      const b = new Uint8Array(buf, 0, n);
      let off = 0;
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
      fail(e);
    }
  }
  port.postMessage({ buf }, [buf]);
  Atomics.store(ctl, 1, written + 1);
  Atomics.notify(ctl, 1);
}
port.close();
`;
