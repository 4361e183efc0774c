/**
 * The few things only the built binary shows: the entry point, exit codes, output through a
 * closed pipe. Command logic is tested in-process (test/run.ts `cli`).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI_BIN, labBundle } from '../paths.js';
import { runCli } from './cli.js';

describe('the memsleuth binary', () => {
  it('prints its version and help, exit 0; no command, exit 2', () => {
    const v = runCli(['--version']);
    expect(v.status).toBe(0);
    expect(v.stdout).toMatch(/^memsleuth \d+\.\d+\.\d+\n$/);
    const h = runCli(['--help']);
    expect(h.status).toBe(0);
    expect(h.stdout).toMatch(/^Usage: memsleuth <command> \[options\]/);
    expect(runCli([]).status).toBe(2);
  });

  it('reports a user error in one line and a hint, exit 2; an unknown command names the close ones', () => {
    const r = runCli(['report', '/nonexistent/snapshot']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /^memsleuth: \/nonexistent\/snapshot: cannot open snapshot \(not present\)\nhint: .+\n$/,
    );
    const u = runCli(['page-owner', 'nope']);
    expect(u.status).toBe(2);
    expect(u.stderr).toMatch(/hint: memsleuth page-owner sort, memsleuth page-owner top/);
  });

  it('reads a committed lab bundle end to end', () => {
    const r = runCli(['report', labBundle('6.12', 'after')]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^memsleuth report — .*, Linux 6\.12\.117, /);
    expect(r.stdout).toMatch(/msl_vmalloc_leak \[msl_leaky\]\s+40\s+320\.0 KiB/);
  });

  it('record runs as a daemon from its first module on: no optimizing compiler, page-owner has it', () => {
    // Flags set once the command's modules are loaded would come too late: Node's module
    // loader has warmed up by then (src/cli/daemon.ts).
    const traced = (args: string[]) =>
      spawnSync(process.execPath, ['--trace-opt', CLI_BIN, ...args], {
        encoding: 'utf8',
        maxBuffer: 1 << 28,
      });
    const dir = mkdtempSync(join(tmpdir(), 'msl-daemon-'));
    try {
      const r = traced(['record', '--db', join(dir, 'r.db'), '--interval', '200ms', '--duration', '3s']);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/ticks, /);
      expect(r.stdout.match(/^.*target TURBOFAN.*$/m)?.[0]).toBeUndefined();
      const control = traced(['page-owner', 'top', labBundle('6.12', 'after')]);
      expect(control.status, control.stderr).toBe(0);
      expect(control.stdout).toMatch(/target TURBOFAN/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stops quietly, exit 0, when its reader closes the pipe', () => {
    const r = spawnSync(
      'sh',
      [
        '-c',
        `"${process.execPath}" "${CLI_BIN}" page-owner top --stacks "${labBundle('6.1', 'after')}" | head -n 1`,
      ],
      {
        encoding: 'utf8',
      },
    );
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^page_owner /);
    expect(r.stderr).toBe('');
  });
});
