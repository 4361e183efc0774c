import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import type { Readable } from 'node:stream';
import { MANIFEST_FORMAT, type Manifest, type Snapshot } from '../model/snapshot.js';
import { FileSnapshot } from './snapshot.js';

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
    for await (const c of this.stdin) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
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

/** The cache a slab trace file belongs to, from its name: `kmalloc-96.alloc_traces` or `.../slab/kmalloc-96/alloc_traces`. */
export function slabTraceFileCache(file: string): { cache: string; kind: string } | undefined {
  const name = basename(file);
  const dotted = /^(.+)\.(alloc_traces|free_traces|alloc_calls|free_calls)$/.exec(name);
  if (dotted) return { cache: dotted[1]!, kind: dotted[2]! };
  const nested = /\/([^/]+)\/(alloc_traces|free_traces|alloc_calls|free_calls)$/.exec(file);
  return nested ? { cache: nested[1]!, kind: nested[2]! } : undefined;
}
