import { cpSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Snapshot directories that change over time, for exporters started with `--snapshot LINK`: the
 * link is swapped atomically (a new symlink renamed over it), and the exporter resolves it once per
 * snapshot, so every scrape reads one whole capture.
 */

/** Point `link` at `target` atomically. */
export function swapLink(link: string, target: string): void {
  const tmp = `${link}.tmp-${process.pid}`;
  rmSync(tmp, { force: true });
  symlinkSync(target, tmp);
  renameSync(tmp, link);
}

/** What grows in a generated capture. */
export type Growth =
  /** Memory no counter sees: MemFree and MemAvailable fall, nothing else rises. */
  | { layer: 'unaccounted' }
  /** One slab cache: its slabs and objects, meminfo Slab and SUnreclaim rise; MemFree and MemAvailable fall. */
  | { layer: 'slab'; cache: string };

function setKb(meminfo: string, field: string, deltaBytes: number): string {
  const re = new RegExp(`^(${field.replace(/[()]/g, '\\$&')}:\\s+)(\\d+)( kB)$`, 'm');
  const m = re.exec(meminfo);
  if (!m) throw new Error(`meminfo has no ${field}`);
  const kb = Number(m[2]) + Math.round(deltaBytes / 1024);
  if (kb < 0) throw new Error(`${field} would fall below zero`);
  // Keep the kernel's right-aligned column.
  return meminfo.replace(re, `${m[1]}${String(kb).padStart(m[2]!.length)}${m[3]}`);
}

/**
 * A real capture (`base`, a snapshot directory) rewritten so that one layer has grown by
 * `grownBytes`, consistently across the files that see it. Pure text in, text out.
 */
export function grownCapture(
  files: { meminfo: string; slabinfo?: string },
  growth: Growth,
  grownBytes: number,
  pageSizeBytes = 4096,
): { meminfo: string; slabinfo?: string } {
  if (growth.layer === 'unaccounted') {
    const meminfo = setKb(setKb(files.meminfo, 'MemFree', -grownBytes), 'MemAvailable', -grownBytes);
    return { ...files, meminfo };
  }
  if (!files.slabinfo) throw new Error('a slab growth needs slabinfo');
  const lines = files.slabinfo.split('\n');
  const i = lines.findIndex((l) => l.split(/\s+/)[0] === growth.cache);
  if (i < 0) throw new Error(`slabinfo has no cache ${growth.cache}`);
  const f = lines[i]!.trim().split(/\s+/);
  // name active num objsize objperslab pagesperslab : tunables l b s : slabdata active num shared
  const perSlab = Number(f[4]);
  const pagesPerSlab = Number(f[5]);
  const slabs = Math.round(grownBytes / (pagesPerSlab * pageSizeBytes));
  const bytes = slabs * pagesPerSlab * pageSizeBytes;
  f[1] = String(Number(f[1]) + slabs * perSlab);
  f[2] = String(Number(f[2]) + slabs * perSlab);
  f[13] = String(Number(f[13]) + slabs);
  f[14] = String(Number(f[14]) + slabs);
  lines[i] = f.join(' ');
  let meminfo = setKb(files.meminfo, 'MemFree', -bytes);
  meminfo = setKb(meminfo, 'MemAvailable', -bytes);
  meminfo = setKb(meminfo, 'Slab', bytes);
  meminfo = setKb(meminfo, 'SUnreclaim', bytes);
  return { meminfo, slabinfo: lines.join('\n') };
}

/**
 * A snapshot directory, behind the symlink `path`, whose layer grows by `stepBytes` at every
 * `step()`: each generation is a copy of `base` with meminfo (and slabinfo) rewritten.
 */
export class GrowingCapture {
  readonly path: string;
  private generation = 0;
  private readonly meminfo: string;
  private readonly slabinfo: string | undefined;

  constructor(
    private readonly base: string,
    private readonly work: string,
    private readonly growth: Growth,
    private readonly stepBytes: number,
  ) {
    mkdirSync(work, { recursive: true });
    this.path = join(work, 'current');
    this.meminfo = readFileSync(join(base, 'meminfo'), 'utf8');
    try {
      this.slabinfo = readFileSync(join(base, 'slabinfo'), 'utf8');
    } catch {
      this.slabinfo = undefined;
    }
    this.write();
  }

  /** Bytes grown so far. */
  get grownBytes(): number {
    return this.generation * this.stepBytes;
  }

  private write(): void {
    const dir = join(this.work, `gen-${this.generation}`);
    cpSync(this.base, dir, { recursive: true });
    const files = grownCapture(
      { meminfo: this.meminfo, ...(this.slabinfo !== undefined ? { slabinfo: this.slabinfo } : {}) },
      this.growth,
      this.grownBytes,
    );
    writeFileSync(join(dir, 'meminfo'), files.meminfo);
    if (files.slabinfo !== undefined) writeFileSync(join(dir, 'slabinfo'), files.slabinfo);
    swapLink(this.path, dir);
    // An exporter may still be reading the previous generation: keep one back.
    rmSync(join(this.work, `gen-${this.generation - 2}`), { recursive: true, force: true });
  }

  step(): void {
    this.generation++;
    this.write();
  }
}
