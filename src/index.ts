// Public library surface. Internal files are not part of it; re-export here only.

export * from './analysis/process.js';
export * from './analysis/stacks.js';
export * from './capture/layout.js';
export { DirectorySnapshot, openSnapshot, type Snapshot } from './capture/snapshot.js';
export * from './errors.js';
export * from './sources/index.js';
