/**
 * Drives ChunkScanners over a page_owner input: in the main thread, or in worker
 * threads. A file is cut into chunks of `chunkBytes` at record boundaries (the byte
 * after a blank line: every such point is where the sequential reader starts a block
 * too), which workers read themselves; a pipe is read by the main thread, cut the same
 * way and handed to workers. Either way the consumer sees every chunk once, in input
 * order, with ids of the main thread's dict: the result does not depend on the number of
 * workers.
 */
import { open, stat } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import type { Readable } from 'node:stream';
import type { Worker } from 'node:worker_threads';
import { type ErrorCode, type ErrorDetails, isMemsleuthError, MemsleuthError } from '../model/errors.js';
import {
  MAX_RECORD_BYTES,
  type PageOwnerInput,
  recordTooLong,
  type ScanProgress,
} from '../sources/page_owner.js';
import { type RangeRequest, RangeScanner } from './page_owner_range.js';
import {
  type ChunkResult,
  ChunkScanner,
  DictMapper,
  PageOwnerDict,
  type ScannerOptions,
} from './page_owner_scan.js';

export interface ParallelOptions {
  /**
   * Worker threads (default, when the input is a file or pipe of at least
   * `minParallelBytes`: one per idle core, as `idleCores` tells, less the calling
   * thread's for a file; 0 scans in the calling thread).
   */
  workers?: number;
  /**
   * Cores free for the scan, asked when threads would pay off (default: from the 1-minute
   * load average; the CLI passes capture/cpu.ts's idleCoresNow, which reads the moment).
   */
  idleCores?: () => number | Promise<number>;
  /**
   * With workers on a file, the calling thread scans chunks too while it would otherwise
   * wait for theirs (default true).
   */
  helper?: boolean;
  /** Bytes per chunk (default 4 MiB). */
  chunkBytes?: number;
  /** Below this size a file is scanned in the calling thread (default 64 MiB). */
  minParallelBytes?: number;
  onProgress?: (p: ScanProgress) => void;
  /** Told the input's size before the first chunk, when it is a regular file. */
  onSize?: (bytes: number) => void;
}

export interface ScanTotals {
  bytes: number;
  /** Blocks (records, empty blocks and an unterminated last block). */
  blocks: number;
  /** Worker threads the scan used (scanChunks; 0: this thread alone). */
  threads?: number;
}

const DEFAULT_CHUNK = 4 << 20;

/** Messages to a worker. */
export type ToWorker =
  | { type: 'start'; scanner: ScannerOptions }
  | ({ type: 'range' } & RangeRequest)
  | { type: 'bytes'; seq: number; buf: ArrayBuffer; length: number; offset: number; final: boolean }
  /** Become a reader of `path` (see readPieces in page_owner_worker.ts). */
  | { type: 'read'; path: string; bytes: number; ctl: SharedArrayBuffer }
  | { type: 'end' };

/** Messages from a worker. */
export type FromWorker =
  | { type: 'chunk'; result: ChunkResult }
  /** A reader's next piece (`end`: the last, possibly empty). */
  | { type: 'read'; buf: ArrayBuffer; length: number; end: boolean }
  | {
      type: 'error';
      message: string;
      stack?: string;
      /** The chunk that failed. */
      seq?: number;
      /** Set for a MemsleuthError (bad input): rebuilt as one here. */
      user?: ErrorDetails & { code: ErrorCode };
    };

/** The error a worker reported, as an Error of this thread. */
function workerError(msg: Extract<FromWorker, { type: 'error' }>): Error {
  if (msg.user) {
    const { code, ...details } = msg.user;
    return new MemsleuthError(code, msg.message, details);
  }
  const e = new Error(msg.message);
  if (msg.stack) e.stack = msg.stack;
  return e;
}

/** The worker script beside this module: built JS from dist/, TypeScript under vitest. */
function workerEntry(): { url: URL; execArgv?: string[] } {
  const self = import.meta.url;
  if (self.endsWith('.ts')) {
    // Running from the TypeScript sources (vitest): Node 20 cannot load .ts by itself, so
    // the worker gets the repository's development loader (test/ts-worker-hooks.mjs).
    const hooks = new URL('../../test/ts-worker-hooks.mjs', self);
    return {
      url: new URL('./page_owner_worker.ts', self),
      execArgv: [...process.execArgv, '--import', hooks.href],
    };
  }
  return { url: new URL('./page_owner_worker.js', self) };
}

function blocksIn(c: ChunkResult): number {
  return c.tuples.length / 8;
}

/**
 * Scan `input` and hand every chunk to `consume`, in order. `dict` is the main thread's
 * dict: chunks scanned elsewhere are mapped into it first.
 */
export async function scanChunks(
  input: PageOwnerInput,
  dict: PageOwnerDict,
  scanner: ScannerOptions,
  consume: (c: ChunkResult) => void,
  opts: ParallelOptions = {},
): Promise<ScanTotals> {
  const chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK;
  let size = -1;
  if (typeof input === 'string') {
    const st = await stat(input);
    if (st.isFile()) size = st.size;
  }
  if (size >= 0) opts.onSize?.(size);
  // Threads pay off on idle cores; on a machine already busy they only add work (about
  // a fifth more CPU in all: messages, and what each thread interns again).
  const min = opts.minParallelBytes ?? 64 << 20;
  const cores =
    opts.workers !== undefined
      ? Math.max(1, availableParallelism())
      : size < 0 || size >= min
        ? await (opts.idleCores ?? idleCores)()
        : 1;
  if (size < 0 && opts.workers === undefined && cores > 1) {
    // A pipe: read here; once it has brought `min` bytes, hand the rest to workers. A pipe or
    // device named by a path is read by a thread of its own (readerSource).
    const source =
      typeof input === 'string'
        ? await readerSource(input, chunkBytes)
        : (input as AsyncIterable<Buffer | string>)[Symbol.asyncIterator]();
    // The reader thread takes a core's share (1 GiB from `cat` on two cores: one worker
    // 4.43-4.66 s, 251 MB; two 4.69-5.00 s, 280-319 MB).
    const workers = typeof input === 'string' ? Math.max(1, cores - 1) : cores;
    try {
      // `threads` 0 when the pipe ended before `min` bytes (no worker started).
      return await scanStreamHybrid(
        source,
        dict,
        scanner,
        consume,
        workers,
        min,
        chunkBytes,
        opts.onProgress,
      );
    } finally {
      await source.return?.();
    }
  }
  const file = typeof input === 'string' && size >= 0;
  const helper = file && (opts.helper ?? true);
  // For a file the calling thread is one of the scanners (the helper): one core fewer.
  const workers = opts.workers ?? (cores > 1 ? cores - (helper ? 1 : 0) : 0);
  if (workers <= 0 || (size >= 0 && size <= chunkBytes)) {
    return { ...(await scanHere(input, dict, scanner, consume, chunkBytes, opts.onProgress)), threads: 0 };
  }
  const t = file
    ? await scanFileInWorkers(
        input as string,
        size,
        dict,
        scanner,
        consume,
        workers,
        helper,
        chunkBytes,
        opts.onProgress,
      )
    : await scanStreamInWorkers(input, dict, scanner, consume, workers, chunkBytes, opts.onProgress);
  return { ...t, threads: workers };
}

/**
 * Cores a scan may use: all of them, unless the load average says others are busy (then
 * as many as are free, at least one).
 */
function idleCores(): number {
  const n = Math.max(1, availableParallelism());
  const load = loadavg()[0] ?? 0;
  return Math.max(1, Math.min(n, Math.floor(n - load + 0.5)));
}

/** What the calling thread hands over to workers when a pipe turns out to be big. */
interface Handoff {
  pending: Buffer;
  seq: number;
  offset: number;
  blocks: number;
}

async function scanStreamHybrid(
  it: AsyncIterator<Buffer | string>,
  dict: PageOwnerDict,
  opts: ScannerOptions,
  consume: (c: ChunkResult) => void,
  workers: number,
  min: number,
  chunkBytes: number,
  onProgress?: (p: ScanProgress) => void,
): Promise<ScanTotals> {
  const here = new BufferedScan(new ChunkScanner(dict, opts, false), consume, chunkBytes, onProgress);
  for (;;) {
    const r = await it.next();
    if (r.done) return { ...here.finish(), threads: 0 };
    here.add(r.value);
    if (here.base >= min) break;
  }
  const rest: AsyncIterable<Buffer | string> = { [Symbol.asyncIterator]: () => it };
  const handoff: Handoff = { pending: here.pending(), seq: here.seq, offset: here.base, blocks: here.blocks };
  const t = await scanStreamInWorkers(rest, dict, opts, consume, workers, chunkBytes, onProgress, handoff);
  return { ...t, threads: workers };
}

/** The calling thread reads and scans (reused buffers; the scanner's dict is `dict`). */
async function scanHere(
  input: PageOwnerInput,
  dict: PageOwnerDict,
  opts: ScannerOptions,
  consume: (c: ChunkResult) => void,
  chunkBytes: number,
  onProgress?: (p: ScanProgress) => void,
): Promise<ScanTotals> {
  const sc = new ChunkScanner(dict, opts, false);
  if (typeof input === 'string') return scanFileHere(input, new Emitter(sc, consume, onProgress), chunkBytes);
  const here = new BufferedScan(sc, consume, chunkBytes, onProgress);
  for await (const c of input as AsyncIterable<Buffer | string>) here.add(c);
  return here.finish();
}

/**
 * Hands what a scanner in this thread scanned on to the consumer, chunk by chunk in order,
 * counting blocks; progress every 8 MB of input.
 */
class Emitter {
  seq = 0;
  blocks = 0;
  private lastReport = 0;
  constructor(
    readonly sc: ChunkScanner,
    private readonly consume: (c: ChunkResult) => void,
    private readonly onProgress?: (p: ScanProgress) => void,
  ) {}
  /** The chunk scanned since the last one. */
  emit(): void {
    const c = this.sc.flush(this.seq++);
    this.blocks += blocksIn(c);
    this.consume(c);
  }
  /** `scanned` bytes of input scanned, `read` read: a progress report when due. */
  progress(scanned: number, read: number): void {
    if (this.onProgress && scanned - this.lastReport >= 8 << 20) {
      this.lastReport = scanned;
      this.onProgress({ bytes: read, blocks: this.blocks });
    }
  }
  /** The totals of a scan of `bytes` bytes, reported. */
  done(bytes: number): ScanTotals {
    const totals = { bytes, blocks: this.blocks };
    this.onProgress?.(totals);
    return totals;
  }
}

/**
 * A stream scanned in this thread: one buffer, the unfinished record kept at its start and
 * new bytes put after it; scanned each time it holds a chunk.
 */
class BufferedScan extends Emitter {
  private work: Buffer;
  private have = 0;
  /** Input offset of work[0]: the bytes before it are scanned. */
  base = 0;
  constructor(
    sc: ChunkScanner,
    consume: (c: ChunkResult) => void,
    private readonly chunkBytes: number,
    onProgress?: (p: ScanProgress) => void,
  ) {
    super(sc, consume, onProgress);
    this.work = Buffer.allocUnsafe(chunkBytes + (64 << 10));
  }
  add(c: Buffer | string): void {
    const chunk = typeof c === 'string' ? Buffer.from(c, 'latin1') : c;
    if (this.have + chunk.length > this.work.length) {
      // A record longer than the buffer makes it grow.
      const bigger = Buffer.allocUnsafe(Math.max(this.work.length * 2, this.have + chunk.length));
      this.work.copy(bigger, 0, 0, this.have);
      this.work = bigger;
    }
    chunk.copy(this.work, this.have);
    this.have += chunk.length;
    if (this.have < this.chunkBytes) return;
    const pos = this.sc.scan(this.work.subarray(0, this.have), 0, this.have, this.base, false);
    if (pos > 0) {
      this.work.copy(this.work, 0, pos, this.have);
      this.have -= pos;
      this.base += pos;
      this.emit();
    }
    this.progress(this.base, this.base + this.have);
  }
  /** The end of the stream: the rest is scanned as the last block. */
  finish(): ScanTotals {
    this.base += this.sc.scan(this.work.subarray(0, this.have), 0, this.have, this.base, true);
    this.emit();
    return this.done(this.base);
  }
  /** A copy of the bytes read and not scanned yet (for the workers a big pipe goes to). */
  pending(): Buffer {
    return Buffer.from(this.work.subarray(0, this.have));
  }
}

/** Bytes kept before each read-ahead buffer's data, for the record left unfinished before it. */
const CARRY = 64 << 10;

/**
 * scanHere for a file: the next half chunk is read (by libuv's threads) while this one is
 * scanned, into the other of two buffers, after room for the unfinished record the scan
 * leaves (a longer one is joined in a buffer of its own). Two halves: the memory of one
 * chunk, as the stream's single buffer.
 */
async function scanFileHere(path: string, out: Emitter, chunkBytes: number): Promise<ScanTotals> {
  const fh = await open(path, 'r');
  try {
    const half = Math.max(1, chunkBytes >> 1);
    const a = Buffer.allocUnsafe(CARRY + half);
    const b = Buffer.allocUnsafe(CARRY + half);
    // Bytes not scanned yet: cur[s, e), at input offset `base`.
    let cur: Buffer<ArrayBufferLike> = b;
    let s = 0;
    let e = 0;
    let base = 0;
    let target = a;
    let reading = fh.read(a, CARRY, half, null);
    for (;;) {
      const n = (await reading).bytesRead;
      const tail = e - s;
      let buf: Buffer;
      let bs: number;
      let be: number;
      if (tail <= CARRY) {
        cur.copy(target, CARRY - tail, s, e);
        buf = target;
        bs = CARRY - tail;
        be = CARRY + n;
      } else {
        buf = Buffer.allocUnsafe(tail + n);
        cur.copy(buf, 0, s, e);
        target.copy(buf, tail, CARRY, CARRY + n);
        bs = 0;
        be = tail + n;
      }
      const final = n === 0;
      if (!final) {
        // Both a and b are free but `buf`: the next chunk goes into the other one.
        target = buf === a ? b : a;
        reading = fh.read(target, CARRY, half, null);
      }
      const pos = out.sc.scan(buf.subarray(0, be), bs, be, base - bs, final);
      if (pos > bs || final) {
        base += pos - bs;
        out.emit();
      }
      if (final) return out.done(base);
      out.progress(base, base + be - pos);
      cur = buf;
      s = pos;
      e = be;
    }
  } finally {
    await fh.close();
  }
}

/**
 * Results may come back out of order: hand them on in sequence. An error of a chunk is
 * thrown when its turn comes: the first error in the input is the one reported, whichever
 * thread found it first.
 */
class InOrder {
  private readonly waiting = new Map<number, { c: ChunkResult; mapper: DictMapper } | { error: unknown }>();
  constructor(
    private readonly consume: (c: ChunkResult) => void,
    private next = 0,
    public bytes = 0,
    public blocks = 0,
  ) {}
  put(c: ChunkResult, mapper: DictMapper): void {
    this.waiting.set(c.seq, { c, mapper });
    this.drain();
  }
  /** Chunk `seq` failed: throws now if it is the next one, else when its turn comes. */
  putError(seq: number, error: unknown): void {
    this.waiting.set(seq, { error });
    this.drain();
  }
  private drain(): void {
    for (;;) {
      const w = this.waiting.get(this.next);
      if (!w) break;
      if ('error' in w) throw w.error;
      this.waiting.delete(this.next);
      this.next++;
      w.mapper.apply(w.c);
      this.blocks += blocksIn(w.c);
      this.bytes += w.c.bytes;
      this.consume(w.c);
    }
  }
  get done(): number {
    return this.next;
  }
  /** Chunks answered and waiting for one before them. */
  get held(): number {
    return this.waiting.size;
  }
}

interface Pool {
  workers: Worker[];
  mappers: DictMapper[];
  /** Chunks handed to workers and not answered yet. */
  inFlight: number;
  /** A worker died or reported an error of its own (not the input's). */
  broken: boolean;
  /** Called whenever inFlight drops to 0 or the pool breaks. */
  onQuiet: (() => void) | undefined;
  /** Retire the workers, or terminate them after `failure` unless it was the input's error. */
  stop(failure?: { error: unknown }): Promise<void>;
}

/**
 * Idle workers kept for the next scan (a diff scans two dumps; tests scan many): they do
 * not keep the process alive, and leave after IDLE_MS without work.
 */
const idle: Worker[] = [];
let idleTimer: NodeJS.Timeout | undefined;
const IDLE_MS = 2000;

function retire(ws: Worker[]): void {
  for (const w of ws) {
    w.removeAllListeners('message');
    w.removeAllListeners('error');
    w.removeAllListeners('exit');
    w.on('error', () => {});
    w.on('exit', () => {
      const i = idle.indexOf(w);
      if (i >= 0) idle.splice(i, 1);
    });
    w.unref();
    idle.push(w);
  }
  if (idleTimer) clearTimeout(idleTimer);
  idleTimer = setTimeout(() => {
    for (const w of idle.splice(0)) void w.terminate();
  }, IDLE_MS);
  idleTimer.unref();
}

/**
 * Stops the idle workers now instead of after IDLE_MS, and resolves once they have exited: a
 * caller that scans no more frees their memory (their isolates and their copies of the
 * stacks) before its next allocations, instead of holding both at its peak.
 */
export async function releaseIdleWorkers(): Promise<void> {
  if (idleTimer) clearTimeout(idleTimer);
  await Promise.all(idle.splice(0).map((w) => w.terminate()));
}

/** Pieces a reader thread may read ahead of the caller. */
const READ_AHEAD = 4;
/** The pieces of readerSource that end at a record's end: each goes to a worker as it is. */
const wholePieces = new WeakSet<Buffer>();

/**
 * A pipe or device (a FIFO, /dev/stdin, debugfs's page_owner) read to its end by a thread of
 * its own (readPieces in page_owner_worker.ts), as pieces of at most `pieceBytes` cut after a
 * record (wholePieces), at most READ_AHEAD of them ahead of the caller. Read by this thread, a
 * pipe was read only while this thread was not grouping: the writer stopped on the full pipe
 * meanwhile, and this thread then waited for it, idle for 2.7 s of a 7 s default sort of 1 GiB
 * from `cat` (the workers for 4.7 s of 6.1). `return()` stops the thread (it never keeps the
 * process alive).
 */
async function readerSource(path: string, pieceBytes: number): Promise<AsyncIterator<Buffer>> {
  const WorkerClass = await workerClass();
  const entry = workerEntry();
  const ctl = new Int32Array(new SharedArrayBuffer(8));
  ctl[0] = READ_AHEAD;
  const w = new WorkerClass(entry.url, entry.execArgv ? { execArgv: entry.execArgv } : {});
  w.unref();
  const queue: Buffer[] = [];
  let ended = false;
  let stopped = false;
  let error: unknown;
  let wake: (() => void) | undefined;
  const poke = () => {
    const f = wake;
    wake = undefined;
    f?.();
  };
  w.on('message', (msg: FromWorker) => {
    if (msg.type === 'read') {
      const piece = Buffer.from(msg.buf, 0, msg.length);
      if (msg.length >= 2 && piece[msg.length - 1] === 10 && piece[msg.length - 2] === 10)
        wholePieces.add(piece);
      queue.push(piece);
      if (msg.end) ended = true;
    } else if (msg.type === 'error') error ??= workerError(msg);
    poke();
  });
  w.on('error', (e) => {
    error ??= e;
    poke();
  });
  // (Node hands over a worker's messages before its 'exit'.)
  w.on('exit', (code) => {
    if (!ended && !stopped) error ??= new Error(`page_owner reader exited with code ${code}`);
    poke();
  });
  const start: ToWorker = { type: 'read', path, bytes: pieceBytes, ctl: ctl.buffer as SharedArrayBuffer };
  w.postMessage(start);
  const stop = () => {
    if (stopped) return;
    stopped = true;
    Atomics.store(ctl, 1, 1);
    Atomics.notify(ctl, 0);
    // A reader blocked in read(2) ends when the read returns.
    if (!ended) void w.terminate();
  };
  return {
    async next(): Promise<IteratorResult<Buffer>> {
      while (queue.length === 0) {
        if (error !== undefined) {
          stop();
          throw error;
        }
        if (ended || stopped) return { done: true, value: undefined };
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
      const b = queue.shift()!;
      Atomics.add(ctl, 0, 1);
      Atomics.notify(ctl, 0);
      return { done: false, value: b };
    },
    async return(): Promise<IteratorResult<Buffer>> {
      stop();
      return { done: true, value: undefined };
    },
  };
}

/**
 * worker_threads, loaded on the first scan that uses workers: every command that reads a
 * snapshot imports this module (through the page_owner registry entry), and the module costs
 * a long-lived recorder 1.6 MiB of RSS it never uses.
 */
async function workerClass(): Promise<typeof Worker> {
  return (await import('node:worker_threads')).Worker;
}

function startPool(
  WorkerClass: typeof Worker,
  n: number,
  scanner: ScannerOptions,
  dict: PageOwnerDict,
): Pool {
  const entry = workerEntry();
  const workers: Worker[] = [];
  const mappers: DictMapper[] = [];
  if (idleTimer) clearTimeout(idleTimer);
  for (let i = 0; i < n; i++) {
    let w = idle.pop();
    if (w) {
      w.removeAllListeners('exit');
      w.ref();
    } else {
      w = new WorkerClass(entry.url, entry.execArgv ? { execArgv: entry.execArgv } : {});
    }
    // A new scanner and dict for this scan.
    const start: ToWorker = { type: 'start', scanner };
    w.postMessage(start);
    workers.push(w);
    mappers.push(new DictMapper(dict));
  }
  const pool: Pool = {
    workers,
    mappers,
    inFlight: 0,
    broken: false,
    onQuiet: undefined,
    stop: async (failure) => {
      if (failure && isMemsleuthError(failure.error) && !pool.broken) {
        // Bad input: every worker is well; once each has answered its last chunk (one
        // answer per chunk, dropped), they wait for the next scan.
        await new Promise<void>((resolve) => {
          pool.onQuiet = () => {
            if (pool.inFlight === 0 || pool.broken) resolve();
          };
          pool.onQuiet();
        });
        if (!pool.broken) {
          retire(workers);
          return;
        }
      }
      // A worker that failed may be in any state: they all go.
      if (failure) await Promise.all(workers.map((w) => w.terminate()));
      else retire(workers);
    },
  };
  return pool;
}

/**
 * Chunks handed to each worker ahead of its answers: enough for it to go on while this thread
 * groups a run of answers or scans a chunk itself (with 2, a worker waited 0.6 s of a 1 GiB
 * default sort's 1.8 s of scanning).
 */
const PIPELINE = 4;

/**
 * The calling thread as one more scanner of a file's chunks: it takes the next chunk
 * whenever it would otherwise wait for the workers' (between their messages), unless
 * HELPER_AHEAD answers already wait for an earlier chunk.
 */
interface Helper {
  /**
   * Scans into a dict of its own, as a worker: the main dict learns stacks in input order
   * (the groupings show the frames of a stack's first record, as they are learnt).
   */
  ranges: RangeScanner;
  mapper: DictMapper;
  /** The next chunk nobody has taken (undefined: none left). */
  take: () => RangeRequest | undefined;
}

/**
 * How far the calling thread scans ahead of an answer it waits for: a new worker's first
 * chunks come 150-450 ms after they were handed out (cold code), and with 4 the calling
 * thread stopped after 4 chunks and waited for them.
 */
const HELPER_AHEAD = 16;

/** Run a pool: `next(i)` gives worker i its next message (undefined: none left). */
function runPool(
  pool: Pool,
  order: InOrder,
  next: (i: number) => Promise<ToWorker | undefined> | ToWorker | undefined,
  expected: () => number,
  onProgress?: (p: ScanProgress) => void,
  helper?: Helper,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let failed = false;
    let lastReport = 0;
    const fail = (e: unknown) => {
      if (failed) return;
      failed = true;
      reject(e);
    };
    const check = () => {
      if (!failed && order.done === expected()) resolve();
    };
    const progress = () => {
      if (onProgress && order.bytes - lastReport >= 8 << 20) {
        lastReport = order.bytes;
        onProgress({ bytes: order.bytes, blocks: order.blocks });
      }
    };
    // The helper scans one chunk per turn of the event loop, after the messages waiting.
    let helping = helper !== undefined;
    let helpQueued = false;
    // It takes the first chunk, before the workers are fed: a new worker loads for 100-300 ms
    // and scans its first chunks slowly (cold code), and the grouping takes chunks in order
    // (with the first chunks a worker's, this thread waited 200-300 ms for them).
    let first = helper?.take();
    const help = () => {
      helpQueued = false;
      if (failed || !helping || order.held >= HELPER_AHEAD) return;
      const m = first ?? helper!.take();
      first = undefined;
      if (m === undefined) {
        helping = false;
        return;
      }
      let scanned: ChunkResult;
      try {
        scanned = helper!.ranges.scan(m);
      } catch (e) {
        if (isMemsleuthError(e)) {
          // Bad input in its chunk: reported when its turn comes; it takes no more.
          helping = false;
          try {
            order.putError(m.seq, e);
          } catch (x) {
            fail(x);
          }
        } else fail(e);
        return;
      }
      // Apart from the scan: put() groups every chunk now in order, and a bad record the
      // grouping finds there (the slow path's) is that chunk's, reported at once (taken for
      // this chunk's error, it was filed after its turn had passed and never thrown).
      try {
        order.put(scanned, helper!.mapper);
      } catch (e) {
        fail(e);
        return;
      }
      progress();
      check();
      queueHelp();
    };
    const queueHelp = () => {
      if (helping && !helpQueued && !failed) {
        helpQueued = true;
        setImmediate(help);
      }
    };
    const feed = async (i: number) => {
      try {
        const m = await next(i);
        if (failed) return;
        if (m === undefined) {
          check();
          return;
        }
        const w = pool.workers[i]!;
        pool.inFlight++;
        if (m.type === 'bytes') w.postMessage(m, [m.buf]);
        else w.postMessage(m);
      } catch (e) {
        fail(e);
      }
    };
    // A worker that reported an error gets no more work.
    const stopped = pool.workers.map(() => false);
    pool.workers.forEach((w, i) => {
      w.on('message', (msg: FromWorker) => {
        pool.inFlight--;
        if (failed) {
          pool.onQuiet?.();
          return;
        }
        if (msg.type === 'error') {
          const e = workerError(msg);
          if (msg.user === undefined) pool.broken = true;
          // This worker gets no more work; the chunks before its own still come in.
          stopped[i] = true;
          if (msg.seq === undefined) fail(e);
          else {
            try {
              order.putError(msg.seq, e);
            } catch (x) {
              fail(x);
            }
          }
          return;
        }
        if (msg.type !== 'chunk') return; // (a reader's, never a pool worker's)
        try {
          order.put(msg.result, pool.mappers[i]!);
        } catch (e) {
          fail(e);
          return;
        }
        progress();
        check();
        if (!stopped[i]) void feed(i);
        queueHelp();
      });
      w.on('error', (e) => {
        pool.broken = true;
        fail(e);
        pool.onQuiet?.();
      });
      w.on('exit', (code) => {
        pool.broken = true;
        if (code !== 0 && !failed) fail(new Error(`page_owner worker exited with code ${code}`));
        pool.onQuiet?.();
      });
      // Each worker has its next chunks queued while it scans one: it never waits for this
      // thread to read its answer and hand out more (a fifth of a worker's time otherwise).
      for (let k = 0; k < PIPELINE; k++) void feed(i);
    });
    queueHelp();
  });
}

async function scanFileInWorkers(
  path: string,
  size: number,
  dict: PageOwnerDict,
  scanner: ScannerOptions,
  consume: (c: ChunkResult) => void,
  workers: number,
  withHelper: boolean,
  chunkBytes: number,
  onProgress?: (p: ScanProgress) => void,
): Promise<ScanTotals> {
  const chunks = Math.ceil(size / chunkBytes);
  const pool = startPool(await workerClass(), Math.min(workers, chunks), scanner, dict);
  const order = new InOrder(consume);
  let given = 0;
  const take = (): RangeRequest | undefined => {
    if (given >= chunks) return undefined;
    const seq = given++;
    return { seq, path, start: seq * chunkBytes, end: Math.min(size, (seq + 1) * chunkBytes), size };
  };
  const helper: Helper | undefined = withHelper
    ? {
        ranges: new RangeScanner(
          new ChunkScanner(new PageOwnerDict(), scanner),
          scanner.maxRecordBytes ?? MAX_RECORD_BYTES,
        ),
        mapper: new DictMapper(dict),
        take,
      }
    : undefined;
  let failure: { error: unknown } | undefined = { error: undefined };
  try {
    await runPool(
      pool,
      order,
      () => {
        const m = take();
        return m && { type: 'range', ...m };
      },
      () => chunks,
      onProgress,
      helper,
    );
    failure = undefined;
  } catch (e) {
    failure = { error: e };
    throw e;
  } finally {
    helper?.ranges.close();
    await pool.stop(failure);
  }
  const done = { bytes: order.bytes, blocks: order.blocks };
  onProgress?.(done);
  return done;
}

async function scanStreamInWorkers(
  input: PageOwnerInput,
  dict: PageOwnerDict,
  scanner: ScannerOptions,
  consume: (c: ChunkResult) => void,
  workers: number,
  chunkBytes: number,
  onProgress?: (p: ScanProgress) => void,
  from: Handoff = { pending: Buffer.alloc(0), seq: 0, offset: 0, blocks: 0 },
): Promise<ScanTotals> {
  const pool = startPool(await workerClass(), workers, scanner, dict);
  const order = new InOrder(consume, from.seq, from.offset, from.blocks);
  const source: AsyncIterator<Buffer | string> =
    typeof input === 'string'
      ? await readerSource(input, chunkBytes)
      : (input as Readable | AsyncIterable<Buffer | string>)[Symbol.asyncIterator]();
  let pending = from.pending;
  let offset = from.offset;
  let seq = from.seq;
  let ended = false;
  let reading: Promise<ToWorker | undefined> | undefined;
  const maxRecord = scanner.maxRecordBytes ?? MAX_RECORD_BYTES;
  // One reader: each request takes the next chunk cut at the last blank line.
  const nextChunk = async (): Promise<ToWorker | undefined> => {
    if (ended) return undefined;
    const parts: Buffer[] = [pending];
    let len = pending.length;
    for (;;) {
      if (len >= chunkBytes) {
        const joined = Buffer.concat(parts, len);
        const cut = joined.lastIndexOf('\n\n');
        if (cut < 0) {
          // The record at the start (after the empty lines there) runs on without its
          // blank line: past the limit it is refused, as in a chunk of a worker. Its turn
          // comes after the chunks handed out before.
          let s = 0;
          while (joined[s] === 10) s++;
          if (len - s > maxRecord) {
            ended = true;
            order.putError(seq++, recordTooLong(scanner.file ?? 'page_owner', offset + s, maxRecord));
            return undefined;
          }
        }
        if (cut >= 0) {
          const n = cut + 2;
          const ab = new ArrayBuffer(n);
          joined.copy(Buffer.from(ab), 0, 0, n);
          pending = Buffer.from(joined.subarray(n));
          const m: ToWorker = { type: 'bytes', seq: seq++, buf: ab, length: n, offset, final: false };
          offset += n;
          return m;
        }
        parts.length = 0;
        parts.push(joined);
      }
      const r = await source.next();
      if (r.done) {
        ended = true;
        const joined = Buffer.concat(parts, len);
        const ab = new ArrayBuffer(joined.length);
        joined.copy(Buffer.from(ab));
        pending = Buffer.alloc(0);
        const m: ToWorker = {
          type: 'bytes',
          seq: seq++,
          buf: ab,
          length: joined.length,
          offset,
          final: true,
        };
        offset += joined.length;
        return m;
      }
      const c = typeof r.value === 'string' ? Buffer.from(r.value, 'latin1') : r.value;
      if (len === 0 && wholePieces.has(c)) {
        // A reader's piece of whole records, nothing before it: handed on without a copy.
        const m: ToWorker = {
          type: 'bytes',
          seq: seq++,
          buf: c.buffer as ArrayBuffer,
          length: c.length,
          offset,
          final: false,
        };
        offset += c.length;
        return m;
      }
      parts.push(c);
      len += c.length;
    }
  };
  let failure: { error: unknown } | undefined = { error: undefined };
  try {
    await runPool(
      pool,
      order,
      () => {
        // Serialise reads: a worker asking while another read is under way waits for it.
        const p = (reading ?? Promise.resolve(undefined)).then(() => nextChunk());
        reading = p;
        return p;
      },
      () => (ended ? seq : Number.POSITIVE_INFINITY),
      onProgress,
    );
    failure = undefined;
  } catch (e) {
    failure = { error: e };
    throw e;
  } finally {
    await pool.stop(failure);
    await source.return?.();
  }
  const done = { bytes: order.bytes, blocks: order.blocks };
  onProgress?.(done);
  return done;
}
