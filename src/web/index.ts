// The web presenter: HTML reports and the dashboard. Re-exports only.
export { minMaxBuckets, minMaxIndices, minMaxStacked } from './downsample.js';
export { diffFlameTree, type FlameGraph, type FlameNode, flameTree } from './flame.js';
export { pageHtml } from './html.js';
export * from './pages.js';
export * from './recording.js';
export { type ServeOptions, type Server, startServer } from './server.js';
export { diffView, reportView, snapshotFlames } from './snapshots.js';
export type * from './types.js';
