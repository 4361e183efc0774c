/**
 * One long-running `eu-addr2line` (elfutils) per ELF file (and per section, for a
 * relocatable .ko whose sections all start at 0): addresses go to its stdin in batches,
 * answers come back in order (it flushes after each). Never one process per frame.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { MemsleuthError } from '../model/errors.js';
import { Addr2lineReader, type CodeLocation } from './addr2line-output.js';

/** The elfutils tool; scripts/ensure-deps.sh installs elfutils. */
export const ADDR2LINE = 'eu-addr2line';

export interface Addr2LineOptions {
  /** Addresses are offsets into this section (for ET_REL files such as a .ko). */
  section?: string;
  /** The program to run (default eu-addr2line). */
  tool?: string;
}

interface Pending {
  resolve(chain: CodeLocation[]): void;
  reject(e: Error): void;
}

/** Sent after each batch: its answer's address line ends the batch's last answer. */
const SENTINEL = 0n;

export class Addr2Line {
  private child: ChildProcessWithoutNullStreams | undefined;
  /** Addresses written and not yet answered, in order; null for a sentinel. */
  private readonly pending: (Pending | null)[] = [];
  /** The address whose answer is being read. */
  private current: Pending | null = null;
  private reader = new Addr2lineReader();
  private partial = '';
  private stderr = '';
  private failure: Error | undefined;
  private exited: Promise<void> | undefined;
  /** Addresses sent, for the benchmark and the tests. */
  lookups = 0;
  /** Processes started (1 unless it had to be restarted). */
  spawns = 0;

  constructor(
    readonly elf: string,
    readonly opts: Addr2LineOptions = {},
  ) {}

  /** The inline chain of each address, innermost first; empty when the file has no line for it. */
  lookup(addresses: readonly bigint[]): Promise<CodeLocation[][]> {
    if (addresses.length === 0) return Promise.resolve([]);
    if (this.failure) return Promise.reject(this.failure);
    const child = this.start();
    const answers = addresses.map(
      (_a) =>
        new Promise<CodeLocation[]>((resolve, reject) => {
          this.pending.push({ resolve, reject });
        }),
    );
    this.setRef(true);
    this.pending.push(null);
    this.lookups += addresses.length;
    child.stdin.write(`${[...addresses, SENTINEL].map((a) => `0x${a.toString(16)}`).join('\n')}\n`);
    return Promise.all(answers);
  }

  /** End the process (closing its stdin) and wait for it. */
  async close(): Promise<void> {
    if (!this.child) return;
    this.setRef(true); // unref'd while idle: waiting for its exit must keep Node alive
    this.child.stdin.end();
    await this.exited;
  }

  private start(): ChildProcessWithoutNullStreams {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) return this.child;
    const tool = this.opts.tool ?? ADDR2LINE;
    const args = ['-e', this.elf, '-a', '-f', '-i', '-C', '--relative'];
    if (this.opts.section) args.push(`--section=${this.opts.section}`);
    const child = spawn(tool, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.spawns++;
    this.child = child;
    this.partial = '';
    this.reader = new Addr2lineReader();
    this.current = null;
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d: string) => this.onData(d));
    child.stderr.on('data', (d: string) => {
      this.stderr = (this.stderr + d).slice(-2000);
    });
    child.stdin.on('error', () => {}); // EPIPE when it died: reported by 'close'
    this.exited = new Promise((resolve) => {
      child.on('error', (e: NodeJS.ErrnoException) => {
        this.fail(
          e.code === 'ENOENT'
            ? new MemsleuthError('UNAVAILABLE', `${tool} not found: it resolves frames to file:line`, {
                hint: 'install elfutils (apt-get install elfutils; scripts/ensure-deps.sh does it)',
                cause: e,
              })
            : e,
        );
        resolve();
      });
      child.on('close', (code, signal) => {
        if (this.pending.some((p) => p !== null) || this.current)
          this.fail(
            new MemsleuthError(
              'IO',
              `${tool} -e ${this.elf} ended (${signal ?? `exit ${code}`}) with addresses unanswered${this.stderr ? `: ${this.stderr.trim().split('\n').pop()}` : ''}`,
              { file: this.elf },
            ),
          );
        resolve();
      });
    });
    return child;
  }

  private onData(d: string): void {
    const text = this.partial + d;
    const lines = text.split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      let started: { previous: CodeLocation[] | undefined } | undefined;
      try {
        started = this.reader.push(line);
      } catch (e) {
        this.fail(e as Error);
        this.child?.kill();
        return;
      }
      if (!started) continue;
      if (this.current && started.previous) this.current.resolve(started.previous);
      this.current = this.pending.shift() ?? null;
    }
    if (this.pending.length === 0 && this.current === null) this.setRef(false);
  }

  private fail(e: Error): void {
    this.failure ??= e;
    this.current?.reject(e);
    this.current = null;
    for (const p of this.pending.splice(0)) p?.reject(e);
  }

  /** An idle process must not keep Node alive: unref it between batches. */
  private setRef(on: boolean): void {
    const c = this.child;
    if (!c) return;
    for (const s of [c, c.stdout, c.stderr, c.stdin] as { ref?(): void; unref?(): void }[]) {
      if (on) s.ref?.();
      else s.unref?.();
    }
  }
}
