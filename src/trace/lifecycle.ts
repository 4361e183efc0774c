/**
 * What a tracing session does when it is told to stop or the process goes away:
 * SIGINT, SIGTERM and SIGHUP end the session normally (it stops, reports and restores
 * tracefs); a process exit that skips that path (process.exit from an EPIPE handler, an
 * uncaught error) still runs the synchronous cleanup. A SIGKILL runs nothing: the next
 * start removes what the dead run left (capture/tracefs.ts cleanupStale).
 */

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export interface Lifecycle {
  /** Aborted on a signal (and when the caller's own signal aborts). */
  readonly signal: AbortSignal;
  /** Which signal ended the session, if one did. */
  readonly reason: () => string | undefined;
  /** Unregister the handlers (after the session restored everything itself). */
  dispose(): void;
}

export function sessionLifecycle(opts: {
  /** Run on process exit if the session did not finish its own cleanup. */
  cleanupSync: () => void;
  /** Catch SIGINT/SIGTERM/SIGHUP (the CLI does; a library caller may not want it). */
  handleSignals: boolean;
  /** The caller's own abort signal, if any. */
  signal?: AbortSignal;
}): Lifecycle {
  const controller = new AbortController();
  let reason: string | undefined;
  const onExternal = () => controller.abort();
  if (opts.signal) {
    if (opts.signal.aborted) controller.abort();
    else opts.signal.addEventListener('abort', onExternal, { once: true });
  }
  const handlers = new Map<string, () => void>();
  if (opts.handleSignals) {
    for (const s of SIGNALS) {
      const h = () => {
        // A second Ctrl-C while stopping: restore now and leave.
        if (controller.signal.aborted) {
          opts.cleanupSync();
          process.exit(130);
        }
        reason = s;
        controller.abort();
      };
      handlers.set(s, h);
      process.on(s, h);
    }
  }
  const onExit = () => opts.cleanupSync();
  process.on('exit', onExit);
  return {
    signal: controller.signal,
    reason: () => reason,
    dispose() {
      for (const [s, h] of handlers) process.off(s, h);
      process.off('exit', onExit);
      opts.signal?.removeEventListener('abort', onExternal);
    },
  };
}

/** Sleep until `ms` pass or `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** CPU seconds this process used so far (user + system). */
export function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** CLOCK_MONOTONIC in seconds: the `mono` trace clock's time base. */
export function monotonicSeconds(): number {
  return Number(process.hrtime.bigint()) / 1e9;
}
