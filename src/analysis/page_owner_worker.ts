/**
 * Worker thread of page_owner_parallel.ts: scans the chunks it is given with its own
 * ChunkScanner and posts each ChunkResult back (its typed arrays moved, not copied).
 */
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

port.on('message', (m: ToWorker) => {
  try {
    if (m.type === 'start') {
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
