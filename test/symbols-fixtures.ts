/**
 * The ELF fixtures of the symbolization tests (test/fixtures/symbols, built by its
 * build.sh) and references independent of elfutils: return addresses from binutils'
 * objdump, lines from the `@tag` comments of the sources.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ElfFile } from '../src/symbols/elf-file.js';
import { REPO_FIXTURES } from './paths.js';

export const FIX = join(REPO_FIXTURES, 'symbols');
export const KO = join(FIX, 'module', 'fixture_mod.ko');
export const TREE = join(FIX, 'tree');
export const VMLINUX = join(TREE, 'vmlinux');
export const PROG = join(FIX, 'prog', 'prog');

/** 1-based line of the `@tag` comment in a fixture source. */
export function lineOf(source: string, tag: string): number {
  const lines = readFileSync(join(FIX, source), 'utf8').split('\n');
  const i = lines.findIndex((l) => l.includes(`/* @${tag} */`));
  if (i < 0) throw new Error(`${source}: no @${tag}`);
  return i + 1;
}

/**
 * The offset (into `func`) of the return address of its call to `callee`, from objdump:
 * what a stack trace prints for that frame.
 */
export function returnOffset(
  file: string,
  func: string,
  callee: string,
  nth = 0,
): { offset: number; length: number } {
  const out = execFileSync('objdump', ['-dr', '--no-show-raw-insn', file], { encoding: 'utf8' });
  const lines = out.split('\n');
  // the nth function of that name (static functions repeat)
  const start = lines.map((l, i) => (l.endsWith(` <${func}>:`) ? i : -1)).filter((i) => i >= 0)[nth]!;
  const base = Number.parseInt(lines[start]!, 16);
  const insns: { at: number; text: string }[] = [];
  for (let i = start + 1; i < lines.length && lines[i]!.trim() !== ''; i++) {
    const m = /^\s+([0-9a-f]+):\s+(.*)$/.exec(lines[i]!);
    if (m) insns.push({ at: Number.parseInt(m[1]!, 16), text: m[2]! });
  }
  const calls = insns.filter(
    (x, i) =>
      /^call\b/.test(x.text) &&
      (x.text.includes(`<${callee}>`) || insns[i + 1]?.text.includes(`R_X86_64_PLT32\t${callee}-`)),
  );
  const call = calls[0];
  if (!call) throw new Error(`objdump: no call to ${callee} in ${func}`);
  const next = insns.find((x) => x.at > call.at && !x.text.startsWith('R_'))!;
  const end = insns[insns.length - 1]!.at;
  return { offset: next.at - base, length: end - base };
}

/** The length the kernel would print: the symbol's span in the file. */
export async function spanOf(file: string, func: string, nth = 0): Promise<number> {
  return (await (await ElfFile.open(file)).symbols()).lookup(func)[nth]!.span;
}
