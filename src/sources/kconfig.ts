import { parseError } from '../model/errors.js';
import type { ParseOptions } from './text.js';

/**
 * A kernel build configuration (/proc/config.gz unpacked, /boot/config-<release>): each
 * `CONFIG_X=value` line, and `# CONFIG_X is not set` as false. Tells a missing source's
 * reason apart: a feature not built in needs a new kernel, one built in needs a boot option.
 */
export type KernelConfig = ReadonlyMap<string, string | false>;

const SET = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/;
const UNSET = /^# (CONFIG_[A-Za-z0-9_]+) is not set$/;

export function parseKernelConfig(text: string, opts: ParseOptions = {}): KernelConfig {
  const file = opts.file ?? '/proc/config.gz';
  const out = new Map<string, string | false>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!.trimEnd();
    if (l === '' || (l.startsWith('#') && !UNSET.test(l))) continue;
    const set = SET.exec(l);
    if (set) out.set(set[1]!, set[2]!);
    else {
      const unset = UNSET.exec(l);
      if (!unset) throw parseError(file, i + 1, '`CONFIG_X=value` or `# CONFIG_X is not set`', l);
      out.set(unset[1]!, false);
    }
  }
  if (out.size === 0)
    throw parseError(file, 1, 'a kernel configuration (CONFIG_... lines)', text.slice(0, 80));
  return out;
}

/** Is an option built in (=y) or a module (=m)? undefined when the config does not mention it. */
export function configEnabled(config: KernelConfig, option: string): boolean | undefined {
  const v = config.get(option);
  if (v === undefined) return undefined;
  return v === 'y' || v === 'm';
}
