import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { MemsleuthError } from '../../model/errors.js';
import { formatBytes, parseDuration } from '../../model/units.js';
import { defaultDbPath } from '../../store/recording.js';
import { isLoopback, startServer } from '../../web/server.js';
import { defineCommand } from '../command.js';
import { VERSION } from '../version.js';

/** `HOST:PORT`, `HOST`, `:PORT` or `PORT`; IPv6 in brackets (`[::1]:8080`). */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*))(?::(\d+))?$/.exec(text.trim());
  const onlyPort = /^\d+$/.test(text.trim());
  const host = onlyPort ? '127.0.0.1' : (m?.[1] ?? m?.[2] ?? '') || '127.0.0.1';
  const port = Number(onlyPort ? text.trim() : (m?.[3] ?? 0));
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new MemsleuthError(
      'USAGE',
      `--listen: expected HOST:PORT, HOST or PORT, found ${JSON.stringify(text)}`,
      {
        hint: '127.0.0.1:8080, [::1]:0, 8080 (port 0: a free one)',
      },
    );
  return { host, port };
}

export const serveCommand = defineCommand({
  path: ['serve'],
  summary: 'a local dashboard: accounting over time, suspects, diffs, flame graphs, and a JSON API',
  options: {
    db: {
      type: 'string',
      valueName: 'FILE',
      description: 'recording database (default as for `record`, if it exists)',
    },
    snapshots: {
      type: 'string',
      valueName: 'DIR',
      description: 'a folder of snapshots (directories or bundles)',
    },
    record: { type: 'boolean', description: 'record this machine into --db while serving' },
    interval: {
      type: 'string',
      short: 'i',
      valueName: 'DUR',
      description: 'with --record: time between ticks (default 10s)',
    },
    listen: {
      type: 'string',
      valueName: 'HOST:PORT',
      description: 'where to listen (default 127.0.0.1 and a free port)',
    },
    token: { type: 'boolean', description: 'require an access token also on loopback (always beyond it)' },
    duration: {
      type: 'string',
      short: 'd',
      valueName: 'DUR',
      description: 'stop after this long (default: Ctrl-C)',
    },
  },
  details:
    'Prints the URL to open. The API: /api/report?snapshot=NAME, /api/diff?before=A&after=B and\n' +
    '/api/leaks return what `report --json`, `diff --json` and `leaks --json` print; NAME is `live`\n' +
    '(this machine now) or a name under --snapshots. Beyond loopback (--listen 0.0.0.0:8080) every\n' +
    'request needs the random token printed in the URL: anyone who can reach the port could\n' +
    'otherwise read every process name and command line of this machine.',
  async run({ values }, ctx) {
    const { host, port } = values.listen ? parseListen(values.listen) : { host: '127.0.0.1', port: 0 };
    const explicitDb = values.db !== undefined;
    let db: string | undefined = values.db ?? defaultDbPath(ctx.env);
    if (!explicitDb && !values.record && !existsSync(db)) db = undefined;
    if (db) db = resolve(ctx.cwd, db);
    const intervalMs = parseDuration(values.interval ?? '10s', 'interval');
    if (values.record && intervalMs < 100) throw new MemsleuthError('USAGE', '--interval: at least 100ms');
    const durationMs = values.duration === undefined ? undefined : parseDuration(values.duration, 'duration');
    if (!isLoopback(host))
      ctx.stderr.write(
        `memsleuth: warning: listening on ${host}, beyond this machine: every request needs the access token in the URL below\n`,
      );
    const ac = new AbortController();
    const stop = () => ac.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      const server = await startServer({
        host,
        port,
        ...(values.token ? { token: randomBytes(16).toString('hex') } : {}),
        ...(db ? { db } : {}),
        ...(values.snapshots ? { snapshotsDir: resolve(ctx.cwd, values.snapshots) } : {}),
        ...(values.record ? { record: { intervalMs, meta: { tool: `memsleuth ${VERSION}` } } } : {}),
        ...(durationMs !== undefined ? { durationMs } : {}),
        signal: ac.signal,
      });
      ctx.stderr.write(
        `memsleuth serve: ${[db && `recording ${db}${values.record ? ` (recording every ${intervalMs / 1000}s)` : ''}`, values.snapshots && `snapshots in ${values.snapshots}`].filter(Boolean).join(', ') || 'this machine'}; Ctrl-C stops\n`,
      );
      ctx.stdout.write(`${server.url}\n`);
      const r = await server.done;
      if (r) ctx.stderr.write(`recorded ${r.ticks} ticks, ${formatBytes(r.dbBytes)}\n`);
      return 0;
    } finally {
      process.removeListener('SIGINT', stop);
      process.removeListener('SIGTERM', stop);
    }
  },
});
