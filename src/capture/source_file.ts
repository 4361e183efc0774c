import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { MemsleuthError } from '../model/errors.js';
import { MANIFEST_FORMAT, type Manifest, type Snapshot } from '../model/snapshot.js';
import { FileSnapshot, MAX_TEXT_BYTES } from './snapshot.js';

/**
 * One raw kernel file as a snapshot that holds just that source: `memsleuth vmalloc diff
 * a.txt b.txt` on two saved copies of /proc/vmallocinfo, `page-owner top` on a dump or
 * a pipe. `path` is the snapshot path the file stands for (`vmallocinfo`,
 * `slab/kmalloc-96.alloc_traces`); `file` is where it is, or `-` with `stdin` for a pipe.
 * The manifest records nothing about the machine (no host, kernel or page size was saved
 * with the file: 4 KiB pages are assumed) and names the one source in `source`.
 */
export class SourceFileSnapshot extends FileSnapshot implements Snapshot {
  readonly origin: string;

  constructor(
    readonly file: string,
    readonly path: string,
    readonly source: string,
    private readonly stdin?: NodeJS.ReadableStream,
  ) {
    super();
    this.origin = file === '-' ? '<stdin>' : file;
  }

  describe(path: string): string {
    return path === this.path ? this.origin : `${this.origin}:${path}`;
  }

  protected fileOf(path: string): string | undefined {
    return path === this.path && this.file !== '-' ? this.file : undefined;
  }

  override async readText(path: string): Promise<string | undefined> {
    if (path !== this.path || this.file !== '-' || !this.stdin) return super.readText(path);
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const c of this.stdin) {
      const b = typeof c === 'string' ? Buffer.from(c) : (c as Buffer);
      total += b.length;
      // Stop at the limit of a text source: `cat /dev/zero | memsleuth vmalloc top -` ends.
      if (total > MAX_TEXT_BYTES) {
        throw new MemsleuthError(
          'BAD_INPUT',
          `<stdin>: more than ${MAX_TEXT_BYTES} bytes, not a kernel text source`,
          {
            file: '<stdin>',
          },
        );
      }
      chunks.push(b);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  override async openStream(path: string): Promise<Readable | undefined> {
    if (path === this.path && this.file === '-' && this.stdin) return this.stdin as Readable;
    if (path === this.path && this.file !== '-') {
      // Pipes and debugfs files are read as they come, never stat-ed for a size.
      return createReadStream(this.file, { highWaterMark: 1 << 20 });
    }
    return super.openStream(path);
  }

  async pids(): Promise<number[]> {
    return [];
  }

  async slabTraceFiles(): Promise<Map<string, Set<string>>> {
    const m = /^slab\/(.+)\.([a-z_]+)$/.exec(this.path);
    return m ? new Map([[m[1]!, new Set([m[2]!])]]) : new Map();
  }

  async manifest(): Promise<Manifest> {
    return {
      format: MANIFEST_FORMAT,
      tool: `a raw ${this.source} file`,
      hostname: 'unknown',
      kernelRelease: 'unknown',
      pageSizeBytes: 4096,
      time: new Date(0).toISOString(),
      uptimeSeconds: 0,
      files: [this.path],
      missing: [],
      source: this.source,
    };
  }

  async close(): Promise<void> {}
}
