import { sourceLocation } from '../../model/snapshot.js';
import { parseZoneinfo, type Zoneinfo } from '../../sources/zoneinfo.js';
import type { SourceEntry } from '../types.js';
import { readParsed } from './read.js';

/** /proc/zoneinfo: managed pages and per-CPU free lists, which refine the accounting's free layer. */
export const zoneinfo: SourceEntry<Zoneinfo> = {
  name: 'zoneinfo',
  location: sourceLocation('zoneinfo'),
  title: 'per-zone page counters and watermarks (/proc/zoneinfo)',
  load: (snap) => readParsed(snap, 'zoneinfo', parseZoneinfo),
  recognise: (head) => /^Node \d+, zone\s+\S+\s*\n\s+(per-node stats|pages free)/m.test(head),
};
