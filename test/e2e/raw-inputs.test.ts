/**
 * Every analysis command takes what a user has at hand: a bundle, a snapshot directory, or the
 * raw kernel file itself, recognised by its content.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_FIXTURES } from '../paths.js';
import { cli } from '../run.js';

const work = mkdtempSync(join(tmpdir(), 'memsleuth-raw-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const fixture = (p: string) => join(REPO_FIXTURES, p);

/** A copy of a fixture with some lines appended (a later moment of the same machine). */
function grown(src: string, name: string, extra: string): string {
  const p = join(work, name);
  writeFileSync(p, readFileSync(fixture(src), 'utf8') + extra);
  return p;
}

describe('raw kernel files as inputs', () => {
  it('vmalloc diff on two saved copies of /proc/vmallocinfo', async () => {
    const extra = Array.from(
      { length: 3 },
      (_, i) =>
        `0xffffc90001${i}00000-0xffffc90001${i}03000   12288 leaky_grow+0x25/0x47 [leaky] pages=2 vmalloc N0=2\n`,
    ).join('');
    const after = grown('live-6.18/vmallocinfo', 'vmallocinfo.after', extra);
    const r = await cli(['vmalloc', 'diff', fixture('live-6.18/vmallocinfo'), after]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^vmalloc \+24\.0 KiB in pages, 1 callers grew\n/);
    expect(r.stdout).toMatch(/\+24\.0 KiB\s+\+3\s+24\.0 KiB\s+leaky_grow \[leaky\]\n/);
  });

  it('allocinfo top, slab top and report on the raw files', async () => {
    const a = await cli([
      'allocinfo',
      'top',
      '--top',
      '3',
      fixture('allocinfo-2.0/commit-39d117e04d15.allocinfo'),
    ]);
    expect(a.status).toBe(0);
    expect(a.stdout).toMatch(/\(allocinfo 2\.0\)/);
    const s = await cli(['slab', 'top', '--json', fixture('live-6.18/slabinfo')]);
    expect(s.status).toBe(0);
    expect(JSON.parse(s.stdout).rows.length).toBeGreaterThan(100);
    const m = await cli(['report', '--json', fixture('live-6.18/meminfo')]);
    expect(m.status).toBe(0);
    const rep = JSON.parse(m.stdout);
    expect(rep.accounting.memTotalBytes).toBeGreaterThan(0);
    // One file holds one source: nothing else is "missing" from it.
    expect(rep.unavailable).toEqual([]);
  });

  it('diff of two raw meminfo files compares meminfo and names the rest missing', async () => {
    const text = readFileSync(fixture('live-6.18/meminfo'), 'utf8');
    const after = join(work, 'meminfo.after');
    const shmem = Number(/^Shmem:\s+(\d+) kB/m.exec(text)![1]);
    writeFileSync(
      after,
      text.replace(/^Shmem:(\s+)\d+ kB/m, (_, sp) => `Shmem:${sp}${shmem + 1024} kB`),
    );
    const r = await cli(['diff', '--json', fixture('live-6.18/meminfo'), after]);
    expect(r.status).toBe(0);
    const d = JSON.parse(r.stdout);
    expect(d.rows).toEqual([
      expect.objectContaining({ source: 'meminfo', name: 'Shmem', deltaBytes: 1024 * 1024 }),
    ]);
    expect(d.sources.find((s: { source: string }) => s.source === 'meminfo').status).toBe('compared');
  });

  it('says what a file is when a command wants another source', async () => {
    const r = await cli(['vmalloc', 'top', fixture('live-6.18/meminfo')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /live-6\.18\/meminfo: this is meminfo, not vmallocinfo\nhint: `memsleuth report` reads it; vmallocinfo comes from \/proc\/vmallocinfo\n/,
    );
  });

  it('names what it can read when a file is none of them', async () => {
    const p = join(work, 'notes.txt');
    writeFileSync(p, 'hello\n');
    const r = await cli(['report', p]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /notes\.txt: not a snapshot bundle, a snapshot directory or a kernel memory file memsleuth knows\nhint: raw files it reads: meminfo, vmstat, zoneinfo, tmpfs, sysvipc_shm, slabinfo, vmallocinfo, buddyinfo, pagetypeinfo, page_owner, page_owner_stacks, kmemleak, allocinfo;/,
    );
  });
});
