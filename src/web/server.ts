/**
 * `memsleuth serve`: the dashboard and its JSON API on one local port. /api/report, /api/diff
 * and /api/leaks answer exactly what `report --json`, `diff --json` and `leaks --json` print
 * (the same library calls); the other routes feed the page's charts, downsampled to min and
 * max per pixel bucket so a week of 10 s ticks stays fluid.
 *
 * Loopback by default. Anywhere else only with an access token: every request must carry it
 * (`?token=`), and the printed URL does. On loopback the Host header must name this server,
 * so a web page that rebinds its own name to 127.0.0.1 cannot read the API.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createAdaptorServer } from '@hono/node-server';
import { type Context, Hono } from 'hono';
import type { LeakReport } from '../analysis/leaks.js';
import { openLiveSnapshot } from '../capture/live.js';
import { MemsleuthError } from '../model/errors.js';
import type { Snapshot } from '../model/snapshot.js';
import { type RecordOptions, type RecordResult, record } from '../record/recorder.js';
import { diffSnapshots } from '../registry/diff.js';
import { openInput } from '../registry/open.js';
import { buildReport } from '../registry/report.js';
import { RecordingReader } from '../store/recording.js';
import { pageHtml } from './html.js';
import {
  type AccountingSeries,
  accountingSeries,
  accountingView,
  diffTimes,
  MEM_AVAILABLE,
  projectionView,
  type RawSeries,
  readSeries,
  recordingLeaks,
  seriesView,
  suspectView,
} from './recording.js';
import { diffView, reportView, snapshotFlames } from './snapshots.js';
import type { PageData, ServeInfo } from './types.js';

export interface ServeOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: a free port. */
  port?: number;
  /** Require this token on every request (`?token=`). startServer makes one for a non-loopback host. */
  token?: string;
  /** A recording to show (and to write with `record`). */
  db?: string;
  /** A folder of snapshots (directories or bundles) to report on, diff and draw. */
  snapshotsDir?: string;
  /** Record this machine into `db` while serving. */
  record?: Omit<RecordOptions, 'db' | 'signal'>;
  /** Stop after this long (ms). */
  durationMs?: number;
  /**
   * Analyse the recording before listening (the layers over time, the suspects and their
   * series), so the page's first view needs no database scan. Default true.
   */
  prepare?: boolean;
  signal?: AbortSignal;
}

export interface Server {
  /** What to open: http://host:port/ (with ?token= when one is needed). */
  url: string;
  host: string;
  port: number;
  token: string | undefined;
  /** Resolves when the server has stopped (signal, duration or close()), with the recorder's result. */
  done: Promise<RecordResult | undefined>;
  close(): Promise<void>;
}

/** 127.0.0.0/8, ::1 and localhost: nothing beyond this machine can connect. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

/** The snapshots of a folder: its subdirectories and bundles, by name. */
export function listSnapshots(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw new MemsleuthError('IO', `${dir}: cannot list snapshots (${(e as Error).message})`, { file: dir });
  }
  return names
    .filter((n) => {
      if (n.startsWith('.')) return false;
      const st = statSync(join(dir, n), { throwIfNoEntry: false });
      return st?.isDirectory() || (st?.isFile() && /\.(tar\.gz|tgz)$/.test(n));
    })
    .sort();
}

class HttpError extends Error {
  constructor(
    readonly status: 400 | 403 | 404 | 500,
    message: string,
  ) {
    super(message);
  }
}

function num(c: Context, name: string): number | undefined {
  const v = c.req.query(name);
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new HttpError(400, `${name}: not a number: ${JSON.stringify(v)}`);
  return n;
}

function required(c: Context, name: string): string {
  const v = c.req.query(name);
  if (!v) throw new HttpError(400, `${name} is required`);
  return v;
}

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export async function startServer(opts: ServeOptions = {}): Promise<Server> {
  const host = opts.host ?? '127.0.0.1';
  const token = opts.token ?? (isLoopback(host) ? undefined : randomBytes(16).toString('hex'));
  const snapshots = opts.snapshotsDir ? listSnapshots(opts.snapshotsDir) : [];
  const ac = new AbortController();
  const stop = () => ac.abort();
  opts.signal?.addEventListener('abort', stop, { once: true });
  if (opts.signal?.aborted) stop();

  // The recording: read-only, opened when it exists (after the recorder's first tick).
  let reader: RecordingReader | undefined;
  const recording = () => {
    if (!opts.db) throw new HttpError(404, 'no recording: start with --db FILE or --record');
    if (!reader) {
      try {
        reader = new RecordingReader(opts.db);
      } catch (e) {
        if (opts.record) throw new HttpError(404, 'the recorder has not written its first tick yet');
        throw e;
      }
    }
    return reader;
  };
  let recorder: Promise<RecordResult> | undefined;
  if (opts.record && opts.db) {
    recorder = record({
      ...opts.record,
      db: opts.db,
      signal: ac.signal,
      onTick: (i) => opts.record?.onTick?.(i),
    });
    // A recorder that fails stops the server; `done` rejects with its error.
    recorder.catch(() => stop());
  }
  const info: ServeInfo = {
    snapshots: ['live', ...snapshots],
    recording: opts.db !== undefined,
    recordingLive: recorder !== undefined,
    ...(opts.record ? { intervalMs: opts.record.intervalMs } : {}),
  };

  const open = async (name: string | undefined): Promise<Snapshot> => {
    if (name === undefined || name === '' || name === 'live') return openLiveSnapshot();
    if (!snapshots.includes(name)) throw new HttpError(404, `no snapshot ${JSON.stringify(name)}`);
    return openInput(join(opts.snapshotsDir!, name));
  };
  const withSnap = async <T>(name: string | undefined, f: (s: Snapshot) => Promise<T>): Promise<T> => {
    const s = await open(name);
    try {
      return await f(s);
    } finally {
      await s.close();
    }
  };
  // Snapshots on disk do not change: their answers are kept. The live machine and the
  // recording are read again (the recording when a tick was added).
  const cache = new Map<string, Promise<unknown>>();
  const cached = <T>(key: string, keep: boolean, f: () => Promise<T>): Promise<T> => {
    if (!keep) return f();
    let p = cache.get(key) as Promise<T> | undefined;
    if (!p) {
      p = f();
      cache.set(key, p);
      p.catch(() => cache.delete(key));
    }
    return p;
  };
  const stable = (name: string | undefined) => name !== undefined && name !== '' && name !== 'live';
  // What the recording shows, computed once per tick count: the layers at full resolution,
  // `leaks` with its default options, and every suspect's series (one scan for all of them).
  interface Analysed {
    ticks: number;
    accounting: AccountingSeries;
    leaks: LeakReport;
    raws: Map<string, RawSeries>;
  }
  let analysed: Analysed | undefined;
  const analyse = (): Analysed => {
    const r = recording();
    const ticks = r.span().ticks;
    if (analysed && analysed.ticks === ticks) return analysed;
    const leaks = recordingLeaks(r);
    const range = { fromMs: leaks.firstMs, toMs: leaks.lastMs };
    const raws = readSeries(r, [...leaks.suspects, MEM_AVAILABLE], range);
    analysed = {
      ticks,
      accounting: accountingSeries(r, range),
      leaks,
      raws: new Map(raws.map((x) => [`${x.id} ${x.metric}`, x])),
    };
    return analysed;
  };
  const leaksOf = (c: Context): LeakReport => {
    const since = c.req.query('since') || undefined;
    const minRate = num(c, 'min-rate');
    if (since === undefined && minRate === undefined) return analyse().leaks;
    return recordingLeaks(recording(), { since, minRateMiBPerHour: minRate });
  };
  const range = (c: Context) => ({ fromMs: num(c, 'from'), toMs: num(c, 'to'), buckets: num(c, 'buckets') });

  const app = new Hono();
  app.use('*', async (c, next) => {
    if (token) {
      const given = c.req.query('token') ?? '';
      if (!sameToken(given, token))
        return c.text(
          'forbidden: this server needs its access token (?token=, printed when it started)\n',
          403,
        );
    } else {
      const want = new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `${host}:${port}`]);
      if (!want.has(c.req.header('host') ?? ''))
        return c.text('forbidden: unexpected Host header (open the URL the server printed)\n', 403);
    }
    await next();
    c.header('Cache-Control', 'no-store');
    c.header('X-Content-Type-Options', 'nosniff');
  });
  app.onError((e, c) => {
    if (e instanceof HttpError) return c.json({ error: e.message }, e.status);
    if (e instanceof MemsleuthError)
      return c.json({ error: e.message, code: e.code, ...(e.hint ? { hint: e.hint } : {}) }, 400);
    return c.json({ error: (e as Error).message }, 500);
  });

  app.get('/', (c) => {
    const data: PageData = {
      kind: 'serve',
      title: [opts.db, opts.snapshotsDir].filter(Boolean).join(', ') || 'this machine',
      generatedAt: new Date().toISOString(),
      serve: info,
    };
    return c.html(pageHtml(data));
  });
  app.get('/api/info', (c) => c.json(info));
  app.get('/api/report', async (c) => {
    const name = c.req.query('snapshot');
    return c.json(await cached(`report:${name}`, stable(name), () => withSnap(name, (s) => buildReport(s))));
  });
  app.get('/api/report/view', async (c) => {
    const name = c.req.query('snapshot');
    return c.json(await cached(`view:${name}`, stable(name), () => withSnap(name, (s) => reportView(s))));
  });
  app.get('/api/flames', async (c) => {
    const name = c.req.query('snapshot');
    return c.json(
      await cached(`flames:${name}`, stable(name), () => withSnap(name, (s) => snapshotFlames(s))),
    );
  });
  const twoSnaps = async <T>(c: Context, f: (b: Snapshot, a: Snapshot) => Promise<T>): Promise<T> => {
    const b = required(c, 'before');
    const a = required(c, 'after');
    return withSnap(b, (sb) => withSnap(a, (sa) => f(sb, sa)));
  };
  app.get('/api/diff', async (c) => {
    const key = `diff:${c.req.query('before')}:${c.req.query('after')}`;
    return c.json(await cached(key, true, () => twoSnaps(c, (b, a) => diffSnapshots(b, a))));
  });
  app.get('/api/diff/view', async (c) => {
    const key = `diffview:${c.req.query('before')}:${c.req.query('after')}`;
    return c.json(await cached(key, true, () => twoSnaps(c, (b, a) => diffView(b, a))));
  });
  app.get('/api/leaks', (c) => c.json(leaksOf(c)));
  app.get('/api/status', (c) => {
    const s = recording().span();
    return c.json({ ticks: s.ticks, firstMs: s.firstMs, lastMs: s.lastMs });
  });
  app.get('/api/accounting', (c) => c.json(accountingView(analyse().accounting, range(c))));
  app.get('/api/series/list', (c) => c.json(recording().listSeries()));
  app.get('/api/series', (c) => {
    const q = range(c);
    const [raw] = readSeries(recording(), [{ id: required(c, 'id'), metric: required(c, 'metric') }], q);
    if (!raw) throw new HttpError(404, `no series ${c.req.query('id')} ${c.req.query('metric')}`);
    return c.json(seriesView(raw, q));
  });
  app.get('/api/suspect', (c) => {
    const a = analyse();
    const id = required(c, 'id');
    const metric = required(c, 'metric');
    const s = a.leaks.suspects.find((x) => x.id === id && x.metric === metric);
    const raw = a.raws.get(`${id} ${metric}`);
    if (!s || !raw) throw new HttpError(404, `no suspect ${id} ${metric}`);
    return c.json(suspectView(raw, s, range(c)));
  });
  app.get('/api/projection', (c) => {
    const a = analyse();
    const raw = a.raws.get(`${MEM_AVAILABLE.id} ${MEM_AVAILABLE.metric}`);
    if (!raw) throw new HttpError(404, 'no MemAvailable in this recording');
    return c.json(projectionView(raw, a.leaks, range(c)));
  });
  app.get('/api/diff/times', (c) => {
    const from = num(c, 'from');
    const to = num(c, 'to');
    if (from === undefined || to === undefined)
      throw new HttpError(400, 'from and to (ms since epoch) are required');
    return c.json(diffTimes(recording(), from, to));
  });

  if (opts.db && !opts.record && (opts.prepare ?? true)) analyse();
  const http = createAdaptorServer({ fetch: app.fetch }) as HttpServer;
  let port = 0;
  await new Promise<void>((resolve, reject) => {
    http.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        new MemsleuthError('IO', `cannot listen on ${host}:${opts.port ?? 0}: ${e.code ?? e.message}`, {
          hint:
            e.code === 'EADDRINUSE'
              ? 'another program has that port: pick another, or 0 for a free one'
              : undefined,
        }),
      ),
    );
    http.listen(opts.port ?? 0, host, () => resolve());
  });
  port = (http.address() as AddressInfo).port;
  const hostInUrl = host.includes(':') ? `[${host}]` : host;
  const url = `http://${hostInUrl}:${port}/${token ? `?token=${token}` : ''}`;

  let timer: NodeJS.Timeout | undefined;
  if (opts.durationMs !== undefined) timer = setTimeout(stop, opts.durationMs);
  const closed = new Promise<void>((resolve) => {
    const shut = () => {
      http.close(() => resolve());
      http.closeAllConnections();
    };
    if (ac.signal.aborted) shut();
    else ac.signal.addEventListener('abort', shut, { once: true });
  });
  const done = (async () => {
    await closed;
    if (timer) clearTimeout(timer);
    opts.signal?.removeEventListener('abort', stop);
    const r = recorder ? await recorder : undefined;
    reader?.close();
    return r;
  })();
  return {
    url,
    host,
    port,
    token,
    done,
    close: async () => {
      stop();
      await done;
    },
  };
}
