import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A real Prometheus server (Debian's `prometheus` package, installed by scripts/ensure-deps.sh)
 * for tests: loopback only, a temporary data directory, a generated configuration. `stop()`
 * ends it and removes the directory; tests call it in `finally`/`afterAll`.
 */

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** The binaries, or a loud failure naming the package (never a skip). */
export function requireBinary(name: 'prometheus' | 'promtool' | 'prometheus-node-exporter'): string {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const path = r.stdout.trim();
  if (r.status !== 0 || !path) {
    const pkg = name === 'prometheus-node-exporter' ? name : 'prometheus';
    throw new Error(`${name} not found: install Debian's ${pkg} package (scripts/ensure-deps.sh does)`);
  }
  return path;
}

export interface Target {
  /** The `instance` label Prometheus gives its series. */
  instance: string;
  /** host:port */
  address: string;
}

export interface RunningPrometheus {
  url: string;
  dataDir: string;
  stop(): Promise<void>;
}

/** `promtool <args>` with stdin; its status and output. */
export function promtool(args: string[], input?: string): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(requireBinary('promtool'), args, { input, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

async function waitReady(url: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}:\n${log()}`);
    try {
      const r = await fetch(`${url}/-/ready`);
      if (r.ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`prometheus did not become ready:\n${log()}`);
}

/** Start Prometheus scraping `targets` every `scrapeInterval` (e.g. `1s`), job `memsleuth`. */
export async function startPrometheus(
  targets: Target[],
  opts: { scrapeInterval?: string; extraArgs?: string[]; dataDir?: string } = {},
): Promise<RunningPrometheus> {
  const bin = requireBinary('prometheus');
  const dir = mkdtempSync(join(tmpdir(), 'memsleuth-prom-'));
  const dataDir = opts.dataDir ?? join(dir, 'data');
  const interval = opts.scrapeInterval ?? '1s';
  const config = [
    'global:',
    `  scrape_interval: ${interval}`,
    `  scrape_timeout: ${interval}`,
    'scrape_configs:',
    '  - job_name: memsleuth',
    '    static_configs:',
    ...targets.flatMap((t) => [
      `      - targets: [${JSON.stringify(t.address)}]`,
      `        labels: { instance: ${JSON.stringify(t.instance)} }`,
    ]),
    '',
  ].join('\n');
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(configFile, config);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let output = '';
  const child = spawn(
    bin,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${dataDir}`,
      `--web.listen-address=127.0.0.1:${port}`,
      ...(opts.extraArgs ?? []),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const keep = (b: Buffer) => {
    output = (output + b.toString()).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitReady(url, child, () => output);
  } catch (e) {
    await stop();
    throw e;
  }
  return { url, dataDir, stop };
}
