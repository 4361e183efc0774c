/**
 * A reader of the Prometheus text format for tests: families with help, type and samples,
 * labels as objects. Strict about what it does not understand (it throws).
 */
export interface ParsedFamily {
  name: string;
  help?: string;
  type?: string;
  samples: { labels: Record<string, string>; value: number }[];
}

function unescapeLabel(s: string): string {
  return s.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

export function parseExposition(text: string): Map<string, ParsedFamily> {
  const out = new Map<string, ParsedFamily>();
  const fam = (name: string) => {
    let f = out.get(name);
    if (!f) {
      f = { name, samples: [] };
      out.set(name, f);
    }
    return f;
  };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m = /^# HELP (\S+) (.*)$/.exec(line);
    if (m) {
      fam(m[1]!).help = m[2]!.replace(/\\([\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
      continue;
    }
    m = /^# TYPE (\S+) (\w+)$/.exec(line);
    if (m) {
      fam(m[1]!).type = m[2]!;
      continue;
    }
    if (line.startsWith('#')) continue;
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = unescapeLabel(l[2]!);
    const v = m[3]!;
    const value = v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v);
    fam(m[1]!).samples.push({ labels, value });
  }
  return out;
}

/** `name{a="1",b="2"}` with labels sorted: one key per series. */
export function seriesKey(name: string, labels: Record<string, string>): string {
  const l = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join(',');
  return `${name}{${l}}`;
}
