import { formatBytes } from '../../model/units.js';

export { formatBytes, formatDelta, formatPercent } from '../../model/units.js';

/** A value in its unit: bytes in binary prefixes, counts as integers with separators. */
export function formatValue(v: number, unit: string): string {
  if (unit === 'bytes') return formatBytes(v);
  if (unit === 'pages') return `${Math.round(v).toLocaleString('en-US')} pages`;
  return Math.round(v).toLocaleString('en-US');
}

/** 2026-11-22 04:52:22 (UTC), for axes and tables. */
export function formatTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}
