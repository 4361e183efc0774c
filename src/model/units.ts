/**
 * Units people read and type: byte sizes (binary prefixes), durations (`10s`, `5m`, `7d`)
 * and `--since` moments. One home for each, shared by every presenter. Ground layer.
 */
import { MemsleuthError } from './errors.js';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

/** 1536 → "1.5 KiB"; negative values keep their sign. */
export function formatBytes(bytes: number): string {
  const sign = bytes < 0 ? '-' : '';
  let v = Math.abs(bytes);
  let i = 0;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${sign}${v} B` : `${sign}${v.toFixed(1)} ${UNITS[i]}`;
}

/** Like formatBytes but always with a sign, for deltas. */
export function formatDelta(bytes: number): string {
  return bytes > 0 ? `+${formatBytes(bytes)}` : formatBytes(bytes);
}

export function formatPercent(p: number): string {
  return `${p.toFixed(1)}%`;
}

const DURATION_UNITS_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * `30s`, `5m`, `2h`, `7d`, `250ms` → milliseconds; a bare number is seconds. `name` is the
 * option it came from, for the message.
 */
export function parseDuration(text: string, name: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) {
    throw new MemsleuthError(
      'USAGE',
      `--${name}: expected a duration like 10s, 5m, 2h or 7d, found ${JSON.stringify(text)}`,
    );
  }
  return Number(m[1]) * DURATION_UNITS_MS[(m[2] ?? 's') as keyof typeof DURATION_UNITS_MS];
}

/** `--since 30m` (that long before `endMs`, default now) or an ISO 8601 time → ms since epoch. */
export function parseSince(text: string, endMs: number | undefined): number {
  if (/^\d/.test(text) && /[-T:]/.test(text)) {
    const t = Date.parse(text);
    if (!Number.isNaN(t)) return t;
  }
  return (endMs ?? Date.now()) - parseDuration(text, 'since');
}

/** A duration for people: 45s, 12m, 3.5h, 2.0d. */
export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${(s / 3600).toFixed(1)}h`;
  return `${(s / 86400).toFixed(1)}d`;
}
