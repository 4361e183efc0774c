import { MemsleuthError } from '../model/errors.js';

/**
 * The few calls of Prometheus's HTTP API (https://prometheus.io/docs/prometheus/latest/querying/api/)
 * that `memsleuth fleet` makes, as POST forms (long selectors do not fit a URL), with what they
 * cost counted: requests, response bytes, wall time.
 */

export interface RangeSeries {
  /** Every label, `__name__` included. */
  metric: Record<string, string>;
  /** [seconds since the epoch, value as text]. */
  values: [number, string][];
}

export interface QueryCost {
  requests: number;
  bytes: number;
  ms: number;
}

/** Prometheus answers query_range with at most this many points per series. */
export const MAX_POINTS_PER_SERIES = 11_000;

/** A PromQL string literal (double-quoted; Go escapes). */
export function promString(s: string): string {
  return JSON.stringify(s);
}

/**
 * Add label matchers (`instance="a",job="b"`) to a selector: `name`, `name{...}` or `{...}`.
 */
export function withMatchers(selector: string, matchers: string): string {
  if (matchers.trim() === '') return selector;
  const i = selector.lastIndexOf('}');
  if (i < 0) return `${selector}{${matchers}}`;
  const inner = selector.slice(selector.indexOf('{') + 1, i).trim();
  return `${selector.slice(0, i).trimEnd()}${inner ? ',' : ''}${matchers}}`;
}

export class PrometheusClient {
  readonly cost: QueryCost = { requests: 0, bytes: 0, ms: 0 };
  private readonly base: string;

  constructor(
    url: string,
    private readonly opts: { timeoutMs?: number; token?: string } = {},
  ) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new MemsleuthError('USAGE', `--prometheus: not a URL: ${JSON.stringify(url)}`, {
        hint: 'e.g. --prometheus http://prometheus:9090',
      });
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:')
      throw new MemsleuthError('USAGE', `--prometheus: expected http:// or https://, found ${u.protocol}`);
    this.base = u.href.replace(/\/+$/, '');
  }

  private async post<T>(path: string, form: [string, string][]): Promise<T> {
    const t0 = performance.now();
    const url = `${this.base}${path}`;
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers,
        body: new URLSearchParams(form).toString(),
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 120_000),
      });
      text = await res.text();
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
      throw new MemsleuthError('IO', `${url}: ${cause}`, {
        hint: 'is Prometheus running there? (--prometheus URL)',
      });
    } finally {
      this.cost.requests++;
      this.cost.ms += performance.now() - t0;
    }
    this.cost.bytes += Buffer.byteLength(text);
    let body: { status?: string; data?: T; error?: string; errorType?: string };
    try {
      body = JSON.parse(text);
    } catch {
      throw new MemsleuthError('BAD_INPUT', `${url}: HTTP ${res.status}, not a Prometheus API answer`, {
        found: text.slice(0, 120),
        hint: 'give the Prometheus server root, e.g. http://prometheus:9090',
      });
    }
    if (body.status !== 'success' || body.data === undefined) {
      throw new MemsleuthError(
        'BAD_INPUT',
        `${url}: ${body.errorType ?? `HTTP ${res.status}`}: ${body.error ?? 'no data'}`,
        {
          found: form
            .map(([k, v]) => `${k}=${v}`)
            .join('&')
            .slice(0, 200),
        },
      );
    }
    return body.data;
  }

  /** A range query (times in seconds since the epoch, step in seconds). */
  async queryRange(query: string, start: number, end: number, step: number): Promise<RangeSeries[]> {
    const data = await this.post<{ resultType: string; result: RangeSeries[] }>('/api/v1/query_range', [
      ['query', query],
      ['start', String(start)],
      ['end', String(end)],
      ['step', String(step)],
    ]);
    if (data.resultType !== 'matrix')
      throw new MemsleuthError(
        'BAD_INPUT',
        `query_range ${query}: expected a matrix, got ${data.resultType}`,
      );
    return data.result;
  }

  /** Label sets of the series matching any selector within the time range. */
  async series(matches: string[], start: number, end: number): Promise<Record<string, string>[]> {
    return this.post<Record<string, string>[]>('/api/v1/series', [
      ...matches.map((m) => ['match[]', m] as [string, string]),
      ['start', String(start)],
      ['end', String(end)],
    ]);
  }
}
