/**
 * Worker thread of page_owner_parallel.ts: scans the chunks it is given with its own
 * ChunkScanner and posts each ChunkResult back (its typed arrays moved, not copied).
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { isMemsleuthError } from '../model/errors.js';
import { MAX_RECORD_BYTES } from '../sources/page_owner.js';
import type { FromWorker, ToWorker } from './page_owner_parallel.js';
import { ChunkScanner, PageOwnerDict } from './page_owner_scan.js';

const port = parentPort!;
// A new scanner (and dict) for every scan: a worker serves one scan after another.
let sc = new ChunkScanner(new PageOwnerDict());
let buf = Buffer.allocUnsafe(0);
let fd = -1;
let fdPath = '';
let maxRecord = MAX_RECORD_BYTES;

/** Read [at, at + n) of the open file into buf[into...]; returns bytes read. */
function readAt(at: number, into: number, n: number): number {
  if (buf.length < into + n) {
    const bigger = Buffer.allocUnsafe(Math.max(into + n, buf.length * 2));
    buf.copy(bigger, 0, 0, into);
    buf = bigger;
  }
  let got = 0;
  while (got < n) {
    const r = readSync(fd, buf, into + got, n - got, at + got);
    if (r === 0) break;
    got += r;
  }
  return got;
}

/** Index of the first "\n\n" at or after `from` in buf[0..len), or -1. */
function blankAfter(from: number, len: number): number {
  const e = buf.indexOf('\n\n', from);
  return e >= 0 && e + 1 < len ? e : -1;
}

function range(m: Extract<ToWorker, { type: 'range' }>): void {
  if (fd < 0 || fdPath !== m.path) {
    if (fd >= 0) closeSync(fd);
    fd = openSync(m.path, 'r');
    fdPath = m.path;
  }
  const slack = 1 << 16;
  const nominal = m.end - m.start;
  let len = readAt(m.start, 0, Math.min(m.size, m.end + slack) - m.start);
  sc.resetPfn();
  // Where this chunk starts: after the first blank line at or after the nominal start.
  // None before the nominal end (len reaches past it unless the file ends first): the
  // chunk before runs on to that blank line, and this one is empty.
  let from = 0;
  if (m.start > 0) {
    const e = blankAfter(0, len);
    if (e < 0 || e >= nominal) {
      post(sc.flush(m.seq));
      return;
    }
    from = e + 2;
  }
  // Where it ends: after the first blank line at or after the nominal end, looked for in
  // at most a record's length past it (a longer record is the scanner's error).
  let to: number;
  let final = false;
  if (m.end >= m.size) {
    to = len;
    final = true;
  } else {
    let e = blankAfter(nominal, len);
    while (e < 0 && m.start + len < m.size && len < nominal + maxRecord + 2) {
      const searched = len;
      len += readAt(m.start + len, len, slack);
      e = blankAfter(Math.max(nominal, searched - 1), len);
    }
    if (e >= 0) to = e + 2;
    else {
      to = len;
      final = m.start + len >= m.size;
    }
  }
  if (from < to) {
    const pos = sc.scan(buf.subarray(0, to), from, to, m.start, final);
    // Only a record longer than the limit is left unfinished, and the scanner refuses it.
    if (pos < to) throw new Error(`page_owner worker: chunk ${m.seq} stopped at byte ${m.start + pos}`);
  }
  post(sc.flush(m.seq));
}

function post(result: ReturnType<ChunkScanner['flush']>): void {
  const msg: FromWorker = { type: 'chunk', result };
  port.postMessage(msg, [result.tuples.buffer, result.wide.buffer, result.newRests.buffer] as ArrayBuffer[]);
}

port.on('message', (m: ToWorker) => {
  try {
    if (m.type === 'start') {
      sc = new ChunkScanner(new PageOwnerDict(), m.scanner);
      maxRecord = m.scanner.maxRecordBytes ?? MAX_RECORD_BYTES;
      buf = Buffer.allocUnsafe(0);
      // The file may have been replaced since the last scan.
      if (fd >= 0) closeSync(fd);
      fd = -1;
    } else if (m.type === 'range') range(m);
    else if (m.type === 'bytes') {
      const b = Buffer.from(m.buf, 0, m.length);
      sc.resetPfn();
      sc.scan(b, 0, m.length, m.offset, m.final);
      post(sc.flush(m.seq));
    } else {
      if (fd >= 0) closeSync(fd);
      fd = -1;
      port.close();
    }
  } catch (e) {
    const err = e as Error;
    const msg: FromWorker = {
      type: 'error',
      message: err.message,
      ...(err.stack ? { stack: err.stack } : {}),
      ...(m.type === 'range' || m.type === 'bytes' ? { seq: m.seq } : {}),
    };
    // A user's error (a record over the limit) is rebuilt as one in the calling thread.
    if (isMemsleuthError(e)) {
      msg.user = {
        code: e.code,
        ...(e.file !== undefined ? { file: e.file } : {}),
        ...(e.line !== undefined ? { line: e.line } : {}),
        ...(e.offset !== undefined ? { offset: e.offset } : {}),
        ...(e.expected !== undefined ? { expected: e.expected } : {}),
        ...(e.found !== undefined ? { found: e.found } : {}),
        ...(e.hint !== undefined ? { hint: e.hint } : {}),
      };
    }
    port.postMessage(msg);
  }
});
