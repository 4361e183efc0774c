/**
 * One chunk of a page_owner file, read and scanned where it is called: the worker threads
 * of page_owner_parallel.ts and, while it would otherwise wait for them, the calling thread.
 * A chunk is a nominal byte range [start, end) moved to record boundaries: it starts after
 * the first blank line at or after `start` (the file's start for the first) and ends after
 * the first blank line at or after `end`, so that every record is in exactly one chunk.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { MAX_RECORD_BYTES } from '../sources/page_owner.js';
import type { ChunkResult, ChunkScanner } from './page_owner_scan.js';

/** A chunk to scan: `seq` its place in the input, [start, end) of the file at `path`. */
export interface RangeRequest {
  seq: number;
  path: string;
  start: number;
  end: number;
  /** The file's size. */
  size: number;
}

/** Reads chunks of one file at a time (synchronously) into a buffer it reuses. */
export class RangeScanner {
  private buf = Buffer.allocUnsafe(0);
  private fd = -1;
  private fdPath = '';

  constructor(
    readonly sc: ChunkScanner,
    private readonly maxRecord = MAX_RECORD_BYTES,
  ) {}

  /** Read [at, at + n) of the open file into buf[into...]; returns bytes read. */
  private readAt(at: number, into: number, n: number): number {
    if (this.buf.length < into + n) {
      const bigger = Buffer.allocUnsafe(Math.max(into + n, this.buf.length * 2));
      this.buf.copy(bigger, 0, 0, into);
      this.buf = bigger;
    }
    let got = 0;
    while (got < n) {
      const r = readSync(this.fd, this.buf, into + got, n - got, at + got);
      if (r === 0) break;
      got += r;
    }
    return got;
  }

  /** Index of the first "\n\n" at or after `from` in buf[0..len), or -1. */
  private blankAfter(from: number, len: number): number {
    const e = this.buf.indexOf('\n\n', from);
    return e >= 0 && e + 1 < len ? e : -1;
  }

  /** Scan chunk `m`: what its scanner found there (its records, and what it interned). */
  scan(m: RangeRequest): ChunkResult {
    if (this.fd < 0 || this.fdPath !== m.path) {
      this.close();
      this.fd = openSync(m.path, 'r');
      this.fdPath = m.path;
    }
    const sc = this.sc;
    const slack = 1 << 16;
    const nominal = m.end - m.start;
    let len = this.readAt(m.start, 0, Math.min(m.size, m.end + slack) - m.start);
    sc.resetPfn();
    // Where this chunk starts: after the first blank line at or after the nominal start.
    // None before the nominal end (len reaches past it unless the file ends first): the
    // chunk before runs on to that blank line, and this one is empty.
    let from = 0;
    if (m.start > 0) {
      const e = this.blankAfter(0, len);
      if (e < 0 || e >= nominal) return sc.flush(m.seq);
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
      let e = this.blankAfter(nominal, len);
      while (e < 0 && m.start + len < m.size && len < nominal + this.maxRecord + 2) {
        const searched = len;
        len += this.readAt(m.start + len, len, slack);
        e = this.blankAfter(Math.max(nominal, searched - 1), len);
      }
      if (e >= 0) to = e + 2;
      else {
        to = len;
        final = m.start + len >= m.size;
      }
    }
    if (from < to) {
      const pos = sc.scan(this.buf.subarray(0, to), from, to, m.start, final);
      // Only a record longer than the limit is left unfinished, and the scanner refuses it.
      if (pos < to) throw new Error(`page_owner scan: chunk ${m.seq} stopped at byte ${m.start + pos}`);
    }
    return sc.flush(m.seq);
  }

  /** Close the file (the next scan opens it again: it may have been replaced). */
  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    this.fdPath = '';
  }
}
