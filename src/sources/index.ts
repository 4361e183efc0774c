// Parsers of kernel memory sources: pure functions over text, one per format.

export * from './buddyinfo.js';
export * from './cmdline.js';
export * from './elf_notes.js';
export * from './loadavg.js';
export * from './meminfo.js';
export * from './pagetypeinfo.js';
export * from './proc_stat.js';
export * from './proc_statm.js';
export * from './proc_status.js';
export * from './slabinfo.js';
export * from './smaps.js';
export * from './text.js';
export * from './vmallocinfo.js';
export * from './vmstat.js';
export * from './zoneinfo.js';
