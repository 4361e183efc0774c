import { spawn, spawnSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FdOut } from './fd_write.js';

const dir = mkdtempSync(join(tmpdir(), 'ms-fdout-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fifo(name: string): string {
  const p = join(dir, name);
  expect(spawnSync('mkfifo', [p]).status).toBe(0);
  return p;
}

describe('FdOut', () => {
  it('writes strings and bytes to the descriptor in order, each done when write returns', () => {
    const path = join(dir, 'out.txt');
    const fd = openSync(path, 'w');
    const out = new FdOut(fd, () => {
      throw new Error('not closed');
    });
    expect(out.write('héllo ')).toBe(true);
    expect(out.write(Buffer.from('wörld\n'))).toBe(true);
    expect(readFileSync(path, 'utf8')).toBe('héllo wörld\n');
    closeSync(fd);
  });

  it('calls onClosed when the reader went away (EPIPE), and throws other errors', () => {
    const p = fifo('gone');
    const reader = openSync(p, constants.O_RDONLY | constants.O_NONBLOCK);
    const writer = openSync(p, constants.O_WRONLY);
    closeSync(reader);
    let closed = 0;
    const out = new FdOut(writer, () => {
      closed++;
    });
    out.write('nobody reads this\n');
    expect(closed).toBe(1);
    closeSync(writer);
    const bad = new FdOut(writer, () => {});
    expect(() => bad.write('x')).toThrow(/EBADF/);
  });

  it('waits for a slow reader on a non-blocking pipe (EAGAIN) and loses nothing', async () => {
    const p = fifo('slow');
    const target = join(dir, 'slow.out');
    // A reader of our own lets the non-blocking open succeed; the child reads after a pause, so
    // the 64 KiB pipe fills and writes answer EAGAIN until it does.
    const keep = openSync(p, constants.O_RDONLY | constants.O_NONBLOCK);
    const writer = openSync(p, constants.O_WRONLY | constants.O_NONBLOCK);
    const child = spawn('sh', ['-c', `sleep 0.3; cat "${p}" > "${target}"`], { stdio: 'ignore' });
    const done = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const chunk = Buffer.alloc(256 * 1024);
    for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 7 + (i >> 10)) & 0xff;
    const out = new FdOut(writer, () => {
      throw new Error('not closed');
    });
    // The first 64 KiB fit; the rest waits for the child (our own reader never reads).
    const started = Date.now();
    for (let k = 0; k < 4; k++) out.write(chunk);
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    closeSync(keep);
    closeSync(writer);
    expect(await done).toBe(0);
    expect(Buffer.compare(readFileSync(target), Buffer.concat([chunk, chunk, chunk, chunk]))).toBe(0);
  });
});
