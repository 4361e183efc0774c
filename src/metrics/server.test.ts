import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { labFixture } from '../../test/paths.js';
import { isMemsleuthError } from '../model/errors.js';
import { Exporter } from './exporter.js';
import { CONTENT_TYPE } from './exposition.js';
import { isLoopback, parseListen, serveExporter, writeTextfile } from './server.js';

const work = mkdtempSync(join(tmpdir(), 'memsleuth-server-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const exporter = () =>
  new Exporter({ snapshotDir: labFixture('6.12', 'after'), intervalMs: 60_000, version: 'test' });

describe('the exporter server', () => {
  it('parses --listen and knows loopback', () => {
    expect(parseListen('9935')).toEqual({ host: '127.0.0.1', port: 9935 });
    expect(parseListen(':9935')).toEqual({ host: '127.0.0.1', port: 9935 });
    expect(parseListen('0.0.0.0:80')).toEqual({ host: '0.0.0.0', port: 80 });
    expect(parseListen('[::1]:9935')).toEqual({ host: '::1', port: 9935 });
    for (const bad of ['x', '1.2.3.4:', '127.0.0.1:99999'])
      expect(() => parseListen(bad), bad).toThrow(/--listen: expected HOST:PORT/);
    expect(['127.0.0.1', '127.1.2.3', '::1', 'localhost'].map(isLoopback)).toEqual([true, true, true, true]);
    expect(['0.0.0.0', '::', '10.0.0.1'].map(isLoopback)).toEqual([false, false, false]);
  });

  it('serves /metrics on loopback with the text format’s content type; other paths and methods are refused', async () => {
    const s = await serveExporter(exporter(), { host: '127.0.0.1', port: 0 });
    try {
      const r = await fetch(`${s.url}/metrics`);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe(CONTENT_TYPE);
      expect(await r.text()).toMatch(/^memsleuth_memory_layer_bytes\{layer="unaccounted"\} \d+$/m);
      expect((await fetch(`${s.url}/metrics`, { method: 'HEAD' })).status).toBe(200);
      expect((await fetch(`${s.url}/metrics`, { method: 'POST' })).status).toBe(405);
      expect((await fetch(`${s.url}/nothing`)).status).toBe(404);
      expect(await (await fetch(`${s.url}/`)).text()).toContain('/metrics');
    } finally {
      await s.close();
    }
  });

  it('beyond loopback only with a token, and then only for a scraper that sends it', async () => {
    await expect(serveExporter(exporter(), { host: '0.0.0.0', port: 0 })).rejects.toSatisfy(
      (e) => isMemsleuthError(e) && e.code === 'USAGE' && /token is required/.test(e.message),
    );
    const s = await serveExporter(exporter(), { host: '127.0.0.1', port: 0, token: 's3cret' });
    try {
      expect((await fetch(`${s.url}/metrics`)).status).toBe(401);
      const wrong = await fetch(`${s.url}/metrics`, { headers: { authorization: 'Bearer nope' } });
      expect(wrong.status).toBe(401);
      const right = await fetch(`${s.url}/metrics`, { headers: { authorization: 'Bearer s3cret' } });
      expect(right.status).toBe(200);
    } finally {
      await s.close();
    }
  });

  it('a port in use is a user error naming it', async () => {
    const a = await serveExporter(exporter(), { host: '127.0.0.1', port: 0 });
    try {
      await expect(serveExporter(exporter(), { host: '127.0.0.1', port: a.port })).rejects.toSatisfy(
        (e) => isMemsleuthError(e) && e.code === 'IO' && /EADDRINUSE/.test(e.message),
      );
    } finally {
      await a.close();
    }
  });

  it('writes the textfile by renaming a file node_exporter ignores over memsleuth.prom', async () => {
    const dir = join(work, 'textfile');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    const text = await exporter().scrape();
    const file = await writeTextfile(dir, text);
    expect(file).toBe(join(dir, 'memsleuth.prom'));
    expect(readFileSync(file, 'utf8')).toBe(text);
    expect(readdirSync(dir)).toEqual(['memsleuth.prom']);
    await expect(writeTextfile(join(work, 'missing-dir'), text)).rejects.toSatisfy(
      (e) => isMemsleuthError(e) && e.code === 'IO',
    );
  });
});
