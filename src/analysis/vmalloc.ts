import { callerName, type Frame } from '../model/frame.js';
import type { VmallocArea } from '../sources/vmallocinfo.js';

/** vmalloc areas of one caller. */
export interface VmallocCaller {
  /** `func [module]` (offsets ignored), or `<unknown>` when the kernel printed none. */
  key: string;
  caller?: Frame;
  module?: string;
  areas: number;
  /** Pages backing the areas (`pages=`): the RAM they hold. */
  pages: number;
  /** pages x page size. */
  bytes: number;
  /** Printed sizes summed (virtual space, guard pages included). */
  virtualBytes: number;
  /** Type words seen (vmalloc, ioremap, vmap, user...). */
  flags: string[];
}

/** Group areas by caller, largest RAM first. `vm_map_ram`/unpurged lines have no caller. */
export function vmallocByCaller(areas: readonly VmallocArea[], pageSizeBytes: number): VmallocCaller[] {
  const map = new Map<string, VmallocCaller>();
  for (const a of areas) {
    const key = callerName(a.caller);
    let c = map.get(key);
    if (!c) {
      c = { key, areas: 0, pages: 0, bytes: 0, virtualBytes: 0, flags: [] };
      if (a.caller) c.caller = a.caller;
      if (a.caller?.module) c.module = a.caller.module;
      map.set(key, c);
    }
    c.areas++;
    c.pages += a.pages ?? 0;
    c.bytes += (a.pages ?? 0) * pageSizeBytes;
    c.virtualBytes += a.sizeBytes;
    for (const f of a.flags) if (!c.flags.includes(f)) c.flags.push(f);
  }
  return [...map.values()].sort(
    (x, y) => y.bytes - x.bytes || y.virtualBytes - x.virtualBytes || (x.key < y.key ? -1 : 1),
  );
}

export interface VmallocTop {
  callers: VmallocCaller[];
  totalAreas: number;
  totalBytes: number;
  totalVirtualBytes: number;
}

/** Totals over the callers of one vmallocinfo (`vmalloc top`). */
export function vmallocTop(callers: VmallocCaller[]): VmallocTop {
  return {
    callers,
    totalAreas: callers.reduce((s, c) => s + c.areas, 0),
    totalBytes: callers.reduce((s, c) => s + c.bytes, 0),
    totalVirtualBytes: callers.reduce((s, c) => s + c.virtualBytes, 0),
  };
}

export interface VmallocCallerDelta {
  key: string;
  caller?: Frame;
  module?: string;
  before: { areas: number; bytes: number };
  after: { areas: number; bytes: number };
  deltaAreas: number;
  deltaBytes: number;
}

/** Per caller change, largest RAM gain first. */
export function diffVmalloc(
  before: readonly VmallocCaller[],
  after: readonly VmallocCaller[],
): VmallocCallerDelta[] {
  const b = new Map(before.map((c) => [c.key, c]));
  const a = new Map(after.map((c) => [c.key, c]));
  const out: VmallocCallerDelta[] = [];
  for (const key of new Set([...b.keys(), ...a.keys()])) {
    const cb = b.get(key);
    const ca = a.get(key);
    const any = (ca ?? cb)!;
    const d: VmallocCallerDelta = {
      key,
      before: { areas: cb?.areas ?? 0, bytes: cb?.bytes ?? 0 },
      after: { areas: ca?.areas ?? 0, bytes: ca?.bytes ?? 0 },
      deltaAreas: (ca?.areas ?? 0) - (cb?.areas ?? 0),
      deltaBytes: (ca?.bytes ?? 0) - (cb?.bytes ?? 0),
    };
    if (any.caller) d.caller = any.caller;
    if (any.module) d.module = any.module;
    out.push(d);
  }
  return out.sort(
    (x, y) => y.deltaBytes - x.deltaBytes || y.deltaAreas - x.deltaAreas || (x.key < y.key ? -1 : 1),
  );
}
