import { parseError } from '../model/errors.js';
import { type ParseOptions, safeNumber, singleKernelLine } from './text.js';

/**
 * /proc/PID/statm, in pages (multiply by the snapshot's page size). task_statm() in
 * fs/proc/task_mmu.c: size = total_vm, resident = file + shmem + anon pages, shared = file +
 * shmem pages (the `SHR` of top), text = the code segment, data = data_vm + stack_vm. lib and dt
 * have printed 0 since 2.6 (lib was the library text, dt the dirty pages: top's nDRT).
 */
export interface ProcStatm {
  sizePages: number;
  residentPages: number;
  sharedPages: number;
  textPages: number;
  libPages: number;
  dataPages: number;
  dtPages: number;
}

const EXPECTED = 'seven page counts "size resident shared text lib data dt" (e.g. "565 441 417 388 0 77 0")';

/** Parse /proc/PID/statm. A kernel thread (no mm) prints seven zeros. */
export function parseProcStatm(text: string, opts: ParseOptions = {}): ProcStatm {
  const file = opts.file ?? '/proc/PID/statm';
  const body = singleKernelLine(text, file, EXPECTED, opts);
  const parts = body.trim().split(/ +/);
  if (parts.length !== 7 || !parts.every((p) => /^\d+$/.test(p))) throw parseError(file, 1, EXPECTED, body);
  const [size, resident, shared, textPages, lib, data, dt] = parts.map((p) =>
    safeNumber(p, file, 1, 'a page count'),
  ) as [number, number, number, number, number, number, number];
  return {
    sizePages: size,
    residentPages: resident,
    sharedPages: shared,
    textPages,
    libPages: lib,
    dataPages: data,
    dtPages: dt,
  };
}
