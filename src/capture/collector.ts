import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { MemsleuthError } from '../model/errors.js';
import { SYSTEM_SOURCES, type SystemSourceSpec } from '../model/snapshot.js';

/** The shipped POSIX sh collector (package.json "files" includes collector/). */
export const COLLECTOR_PATH = fileURLToPath(new URL('../../collector/memsleuth-collect.sh', import.meta.url));

const BEGIN =
  '# BEGIN SOURCES: generated from SYSTEM_SOURCES in src/model/snapshot.ts (npm run collector:sources)';
const END = '# END SOURCES';

/** A single-quoted sh word. */
function shQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The live path in the script's terms: debugfs under "$DEBUGFS" (the script lets -d... move it). */
function scriptPath(livePath: string): string {
  return livePath.startsWith('/sys/kernel/debug/')
    ? `"$DEBUGFS/${livePath.slice('/sys/kernel/debug/'.length)}"`
    : livePath;
}

function sourceLines(s: SystemSourceSpec): string[] {
  const read = `source_file ${s.name} ${scriptPath(s.livePath)} ${shQuote(s.enable)}${s.config ? ` ${s.config}` : ''}`;
  if (!s.skipOption) return [read];
  // --no-page-owner sets page_owner=0, as the option parser in the script does.
  const flag = s.skipOption.replace(/^no-/, '').replaceAll('-', '_');
  return [
    `if [ "$${flag}" = 1 ]; then`,
    `  ${read}`,
    'else',
    `  missing ${s.name} ${shQuote(`skipped (--${s.skipOption})`)} ${shQuote(`omit --${s.skipOption}`)}`,
    'fi',
  ];
}

/** The script's block of system-wide sources, one `source_file` per SYSTEM_SOURCES entry. */
export function collectorSourceBlock(): string {
  return [BEGIN, ...SYSTEM_SOURCES.flatMap(sourceLines), END].join('\n');
}

function replaceBlock(script: string): string {
  const i = script.indexOf(BEGIN);
  const j = script.indexOf(END, i);
  if (i < 0 || j < 0) throw new Error(`${COLLECTOR_PATH}: no "${BEGIN}" ... "${END}" block`);
  return script.slice(0, i) + collectorSourceBlock() + script.slice(j + END.length);
}

async function readScript(): Promise<string> {
  try {
    return await readFile(COLLECTOR_PATH, 'utf8');
  } catch (e) {
    throw new MemsleuthError('IO', `cannot read the collector script ${COLLECTOR_PATH}`, {
      file: COLLECTOR_PATH,
      hint: 'the memsleuth installation is incomplete (collector/ missing)',
      cause: e,
    });
  }
}

/** Periodic capture defaults baked into the printed script (its --every, --count, --keep). */
export interface CollectorPeriodic {
  /** Seconds between captures. */
  everySeconds: number;
  /** Captures to take; 0 or undefined: until stopped. */
  count?: number;
  /** Newest captures kept on disk (default 144). */
  keep?: number;
}

/**
 * The collector script with its source list from the registry, stamped with `version` (its
 * manifests name it); with `periodic`, it captures every `everySeconds` by default.
 */
export async function collectorScript(version: string, periodic?: CollectorPeriodic): Promise<string> {
  let text = replaceBlock(await readScript()).replace(/^MSL_VERSION=.*$/m, `MSL_VERSION=${version}`);
  if (periodic) {
    const set = (name: string, v: number) => {
      const re = new RegExp(`^${name}=\\d+$`, 'm');
      if (!re.test(text)) throw new Error(`${COLLECTOR_PATH}: no ${name}= line`);
      text = text.replace(re, `${name}=${v}`);
    };
    set('EVERY', periodic.everySeconds);
    set('COUNT', periodic.count ?? 0);
    set('KEEP', periodic.keep ?? 144);
  }
  return text;
}

/** Is the shipped script's source block the one SYSTEM_SOURCES gives? */
export async function collectorScriptInSync(): Promise<boolean> {
  const text = await readScript();
  return replaceBlock(text) === text;
}

/** Rewrite the shipped script's source block from SYSTEM_SOURCES (`npm run collector:sources`). */
export async function writeCollectorSources(): Promise<void> {
  await writeFile(COLLECTOR_PATH, replaceBlock(await readScript()));
}
