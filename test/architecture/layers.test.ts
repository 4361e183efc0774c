/**
 * Every import in src/ points down. The floors, ground first (docs/architecture.md shows
 * the same picture):
 *
 *   0  model                        shared types: frames, snapshot, samples, errors, units
 *   1  sources                      one pure parser per kernel format
 *   2  capture  store  analysis     the live kernel and bundles; the recording database; pure analysis;
 *      symbols                      ELF debug info and eu-addr2line: frames to file:line
 *   3  registry                     one entry per kernel source, joining the floors below
 *   4  record                       the recording loop: sampler and recorder
 *   5  web  metrics  trace ...      presenters and live tools built on the registry
 *   6  cli                          argv to library calls
 *
 * A file may import from its own folder and from any lower floor, never from its own floor's
 * other folders or from above. Tests (`*.test.ts`) are exempt: they may reach anything.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../paths.js';

const FLOORS: Record<string, number> = {
  model: 0,
  sources: 1,
  capture: 2,
  store: 2,
  analysis: 2,
  // ELF files and eu-addr2line processes for file:line; beside capture, read by the commands above
  symbols: 2,
  registry: 3,
  record: 4,
  web: 5,
  metrics: 5,
  // live tracing sessions: tracefs control (capture), trace parsers (sources), pairing (analysis)
  trace: 5,
  cli: 6,
  // src/index.ts: the public surface re-exports every floor.
  '.': 7,
};

const SRC = join(REPO_ROOT, 'src');

function* sourceFiles(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* sourceFiles(p);
    else if (/\.tsx?$/.test(e.name) && !/\.test\.tsx?$/.test(e.name)) yield p;
  }
}

/** The top folder of src/ a file lives in (`.` for src/index.ts). */
function folderOf(file: string): string {
  const rel = relative(SRC, file);
  return rel.includes('/') ? rel.split('/')[0]! : '.';
}

/** Relative imports and re-exports of a file, static and dynamic. */
function importsOf(text: string): string[] {
  const out: string[] = [];
  const re = /(?:from|import)\s*\(?\s*'(\.[^']*)'/g;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push(m[1]!);
  return out;
}

describe('layers', () => {
  it('every folder of src/ has a floor', () => {
    const folders = readdirSync(SRC, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
    expect(folders.filter((f) => FLOORS[f] === undefined)).toEqual([]);
  });

  it('every import in src/ points down (or stays in its folder)', () => {
    const bad: string[] = [];
    let checked = 0;
    for (const file of sourceFiles(SRC)) {
      const from = folderOf(file);
      for (const spec of importsOf(readFileSync(file, 'utf8'))) {
        const target = resolve(dirname(file), spec);
        if (!target.startsWith(`${SRC}/`)) {
          bad.push(`${relative(REPO_ROOT, file)} imports ${spec}, outside src/`);
          continue;
        }
        const to = folderOf(target);
        checked++;
        if (to === from) continue;
        if (FLOORS[to]! >= FLOORS[from]!)
          bad.push(
            `${relative(REPO_ROOT, file)} (${from}, floor ${FLOORS[from]}) imports ${spec} (${to}, floor ${FLOORS[to]})`,
          );
      }
    }
    expect(checked).toBeGreaterThan(100);
    expect(bad).toEqual([]);
  });

  it('the check itself catches an upward import', () => {
    expect(
      importsOf("import { x } from '../analysis/stacks.js';\nconst m = await import('../cli/main.js');"),
    ).toEqual(['../analysis/stacks.js', '../cli/main.js']);
  });
});
