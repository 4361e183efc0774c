import { type Allocinfo, type AllocTag, allocTagKey } from '../sources/allocinfo.js';

export interface AllocinfoTop {
  version?: string;
  tags: AllocTag[];
  totalBytes: number;
  totalCalls: number;
  /** Tags whose counters the kernel marked inaccurate (version 2.0+). */
  inaccurate: number;
}

/** Call sites of one allocinfo by bytes, with the totals (`allocinfo top`). */
export function allocinfoTop(parsed: Allocinfo): AllocinfoTop {
  const tags = [...parsed.tags].sort((a, b) => b.bytes - a.bytes || b.calls - a.calls || a.line - b.line);
  const top: AllocinfoTop = {
    tags,
    totalBytes: tags.reduce((s, t) => s + t.bytes, 0),
    totalCalls: tags.reduce((s, t) => s + t.calls, 0),
    inaccurate: tags.filter((t) => !t.accurate).length,
  };
  if (parsed.version !== undefined) top.version = parsed.version;
  return top;
}

export interface AllocTagDelta {
  key: string;
  func: string;
  module?: string;
  sourceFile: string;
  sourceLine: number;
  before: { bytes: number; calls: number };
  after: { bytes: number; calls: number };
  deltaBytes: number;
  deltaCalls: number;
}

/** Per call site change, largest byte gain first. Tags of unloaded modules count as 0. */
export function diffAllocinfo(before: readonly AllocTag[], after: readonly AllocTag[]): AllocTagDelta[] {
  const sum = (tags: readonly AllocTag[]) => {
    const m = new Map<string, { tag: AllocTag; bytes: number; calls: number }>();
    for (const t of tags) {
      const k = allocTagKey(t);
      const e = m.get(k);
      if (e) {
        e.bytes += t.bytes;
        e.calls += t.calls;
      } else m.set(k, { tag: t, bytes: t.bytes, calls: t.calls });
    }
    return m;
  };
  const b = sum(before);
  const a = sum(after);
  const out: AllocTagDelta[] = [];
  for (const key of new Set([...b.keys(), ...a.keys()])) {
    const eb = b.get(key);
    const ea = a.get(key);
    const t = (ea ?? eb)!.tag;
    const d: AllocTagDelta = {
      key,
      func: t.func,
      sourceFile: t.sourceFile,
      sourceLine: t.sourceLine,
      before: { bytes: eb?.bytes ?? 0, calls: eb?.calls ?? 0 },
      after: { bytes: ea?.bytes ?? 0, calls: ea?.calls ?? 0 },
      deltaBytes: (ea?.bytes ?? 0) - (eb?.bytes ?? 0),
      deltaCalls: (ea?.calls ?? 0) - (eb?.calls ?? 0),
    };
    if (t.module) d.module = t.module;
    out.push(d);
  }
  return out.sort(
    (x, y) => y.deltaBytes - x.deltaBytes || y.deltaCalls - x.deltaCalls || (x.key < y.key ? -1 : 1),
  );
}
