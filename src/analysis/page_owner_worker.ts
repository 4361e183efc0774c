/**
 * Worker thread of page_owner_parallel.ts: scans the chunks it is given with its own
 * ChunkScanner and posts each ChunkResult back (its typed arrays moved, not copied); or,
 * given 'read' first, reads a pipe or device for the calling thread (readPieces).
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { isMemsleuthError } from '../model/errors.js';
import { MAX_RECORD_BYTES } from '../sources/page_owner.js';
import type { FromWorker, ToWorker } from './page_owner_parallel.js';
import { RangeScanner } from './page_owner_range.js';
import { ChunkScanner, PageOwnerDict } from './page_owner_scan.js';

const port = parentPort!;
// A new scanner (and dict) for every scan: a worker serves one scan after another.
let ranges = new RangeScanner(new ChunkScanner(new PageOwnerDict()));

function post(result: ReturnType<ChunkScanner['flush']>): void {
  const msg: FromWorker = { type: 'chunk', result };
  port.postMessage(msg, [result.tuples.buffer, result.wide.buffer, result.newRests.buffer] as ArrayBuffer[]);
}

/**
 * Read `m.path` to its end in pieces of at most `m.bytes`, each cut after its last blank line
 * (the bytes after it start the next piece), so that a piece holds whole records and goes to a
 * scanning worker as it is; a piece without a blank line (a record longer than the limit) or
 * the last goes uncut. A piece is posted only against a credit in `m.ctl[0]` (the calling
 * thread adds one for each piece it takes): the reader stays at most that many pieces ahead,
 * blocked in Atomics.wait, where a stream would stop reading. `m.ctl[1]` set: stop.
 */
function readPieces(m: Extract<ToWorker, { type: 'read' }>): void {
  const ctl = new Int32Array(m.ctl);
  const fd = openSync(m.path, 'r');
  let carry = Buffer.alloc(0);
  try {
    for (;;) {
      const ab = new ArrayBuffer(m.bytes);
      const b = Buffer.from(ab);
      let n = carry.copy(b);
      while (n < b.length) {
        const r = readSync(fd, b, n, b.length - n, null);
        if (r === 0) break;
        n += r;
      }
      const end = n < b.length;
      const cut = end ? -1 : b.lastIndexOf('\n\n', n - 2);
      const length = cut < 0 ? n : cut + 2;
      carry = Buffer.from(b.subarray(length, n));
      for (;;) {
        if (Atomics.load(ctl, 1) !== 0) return;
        const credits = Atomics.load(ctl, 0);
        if (credits > 0) {
          Atomics.sub(ctl, 0, 1);
          break;
        }
        Atomics.wait(ctl, 0, credits);
      }
      const msg: FromWorker = { type: 'read', buf: ab, length, end };
      port.postMessage(msg, [ab]);
      if (end) return;
    }
  } finally {
    closeSync(fd);
  }
}

port.on('message', (m: ToWorker) => {
  try {
    if (m.type === 'read') {
      readPieces(m);
      port.close();
    } else if (m.type === 'start') {
      // The file may have been replaced since the last scan.
      ranges.close();
      ranges = new RangeScanner(
        new ChunkScanner(new PageOwnerDict(), m.scanner),
        m.scanner.maxRecordBytes ?? MAX_RECORD_BYTES,
      );
    } else if (m.type === 'range') post(ranges.scan(m));
    else if (m.type === 'bytes') {
      const b = Buffer.from(m.buf, 0, m.length);
      const sc = ranges.sc;
      sc.resetPfn();
      sc.scan(b, 0, m.length, m.offset, m.final);
      post(sc.flush(m.seq));
    } else {
      ranges.close();
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
