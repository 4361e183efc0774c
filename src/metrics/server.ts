import { timingSafeEqual } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { MemsleuthError } from '../model/errors.js';
import type { Exporter } from './exporter.js';
import { CONTENT_TYPE } from './exposition.js';

/** `host:port`, `:port` or `port` → host and port; the host defaults to loopback. */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[^:[\]]*):)?(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || !(port >= 0 && port <= 65535)) {
    throw new MemsleuthError('USAGE', `--listen: expected HOST:PORT or PORT, found ${JSON.stringify(text)}`, {
      hint: 'e.g. --listen 127.0.0.1:9935',
    });
  }
  const host = (m[1] || '127.0.0.1').replace(/^\[|\]$/g, '');
  return { host, port };
}

/** Loopback addresses, where no token is needed. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export interface ServeOptions {
  host: string;
  port: number;
  /** Required for a non-loopback address: scrapers send `Authorization: Bearer <token>`. */
  token?: string;
}

export interface RunningServer {
  /** `http://host:port` as bound (the real port when 0 was asked). */
  url: string;
  port: number;
  close(): Promise<void>;
}

function tokenMatches(req: IncomingMessage, token: string): boolean {
  const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
  if (!m) return false;
  const a = Buffer.from(m[1]!);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Serve /metrics until `close()`. Listens on loopback unless told otherwise, then only with a token. */
export async function serveExporter(exporter: Exporter, opts: ServeOptions): Promise<RunningServer> {
  if (!isLoopback(opts.host) && !opts.token) {
    throw new MemsleuthError('USAGE', `--listen ${opts.host}: beyond loopback a token is required`, {
      hint: 'pass --token-file FILE (Prometheus: authorization: { credentials_file: FILE })',
    });
  }
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (opts.token && !tokenMatches(req, opts.token)) {
      res.writeHead(401, { 'www-authenticate': 'Bearer' }).end('unauthorized\n');
      return;
    }
    if (path === '/metrics') {
      try {
        const text = await exporter.scrape();
        res.writeHead(200, { 'content-type': CONTENT_TYPE });
        res.end(req.method === 'HEAD' ? undefined : text);
      } catch (e) {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`${(e as Error).message}\n`);
      }
      return;
    }
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('memsleuth exporter: metrics at /metrics\n');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
  };
  const server: Server = createServer((req, res) => {
    void handle(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        new MemsleuthError('IO', `--listen ${opts.host}:${opts.port}: ${e.code ?? e.message}`, {
          hint: e.code === 'EADDRINUSE' ? 'another process listens there: pick another port' : undefined,
        }),
      ),
    );
    server.listen(opts.port, opts.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * Write the exposition for node_exporter's textfile collector: to a temporary name the
 * collector ignores (not `*.prom`), then renamed over `name`, so a scrape never reads half a file.
 */
export async function writeTextfile(dir: string, text: string, name = 'memsleuth.prom'): Promise<string> {
  const target = join(dir, name);
  const tmp = join(dir, `.${name}.${process.pid}.tmp`);
  try {
    await writeFile(tmp, text);
    await rename(tmp, target);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new MemsleuthError('IO', `${target}: cannot write (${(e as Error).message})`, { file: target });
  }
  return target;
}
