// Parsers of kernel memory sources: pure functions over text, one per format.

export * from './buddyinfo.js';
export * from './meminfo.js';
export * from './pagetypeinfo.js';
export * from './slabinfo.js';
export * from './text.js';
export * from './vmallocinfo.js';
export * from './vmstat.js';
export * from './zoneinfo.js';
