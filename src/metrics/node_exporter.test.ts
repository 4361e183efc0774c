/**
 * The names memsleuth shares with node_exporter, checked against node_exporter's own collector
 * source (test/fixtures/node_exporter: verbatim files at the commits its README names). The rules
 * are read out of the Go code, not copied into this test: a change there shows here.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { labFixture, REPO_FIXTURES } from '../../test/paths.js';
import { DirectorySnapshot } from '../capture/snapshot.js';
import type { MetricFamily, MetricsOptions } from '../registry/index.js';
import { NODE_FAMILIES, NODE_VMSTAT_FIELDS, REGISTRY } from '../registry/index.js';
import { nodeMemoryName } from '../registry/sources/meminfo.js';
import { parseMeminfo } from '../sources/meminfo.js';
import { parseSlabinfo } from '../sources/slabinfo.js';
import { collectFamilies } from './exporter.js';

const NE = join(REPO_FIXTURES, 'node_exporter');
const go = (path: string) => readFileSync(join(NE, path), 'utf8');

/** One regex match or a failure naming what was looked for (the source changed shape). */
function one(re: RegExp, text: string, what: string): RegExpExecArray {
  const m = re.exec(text);
  if (!m) throw new Error(`node_exporter source: ${what} not found (${re})`);
  return m;
}

/** Go's `fmt.Sprintf(format, x)` for one %s. */
const sprintf = (format: string, x: string) => format.replace('%s', x);

const ALL_NODE: MetricsOptions = { nodeFamilies: new Set(NODE_FAMILIES) };

async function familiesOf(dir: string, options: MetricsOptions = ALL_NODE): Promise<MetricFamily[]> {
  const snap = new DirectorySnapshot(dir);
  const pageSizeBytes = (await snap.manifest()).pageSizeBytes || 4096;
  return (await collectFamilies(snap, { pageSizeBytes, options })).families;
}

/** Real meminfo files of many kernels (2.5 documentation to 6.18). */
const MEMINFO_DIRS = ['live-6.18', 'lkml-2009-bug12832', 'lkml-2.6.8', 'docs-3.6', 'docs-2.5'].map((d) =>
  join(REPO_FIXTURES, d),
);

// namespace = "node" (collector/collector.go); BuildFQName joins with "_".
const fq = (subsystem: string, name: string) => `node_${subsystem}_${name}`;

describe('node_exporter names: meminfo', () => {
  const meminfoGo = go('a7dcc3a/collector/meminfo.go');
  const linuxGo = go('a7dcc3a/collector/meminfo_linux.go');
  const procfsGo = go('procfs-v0.21.1/meminfo.go');
  const oldGo = go('68a6c78c/collector/meminfo_linux.go');
  const subsystem = one(/memInfoSubsystem\s*=\s*"(\w+)"/, meminfoGo, 'memInfoSubsystem')[1]!;
  const helpFormat = one(
    /fmt\.Sprintf\("(Memory information field %s\.)", k\)/,
    meminfoGo,
    'help format',
  )[1]!;
  const counterSuffix = one(/strings\.HasSuffix\(k, "(\w+)"\)/, meminfoGo, 'counter suffix')[1]!;

  /** /proc/meminfo name → procfs struct field (the `*Bytes` one where there is one). */
  const procfsField = new Map<string, string>();
  for (const m of procfsGo.matchAll(
    /case "([^"]+):":\s*\n\s*m\.(\w+) = &val\s*\n(?:\s*m\.(\w+) = &valBytes)?/g,
  ))
    procfsField.set(m[1]!, m[3] ?? m[2]!);
  /** procfs struct field → node_exporter's metric suffix (1.9+). */
  const nodeKey = new Map<string, string>();
  for (const m of linuxGo.matchAll(/if meminfo\.(\w+) != nil \{\s*\n\s*metrics\["(\w+)"\]/g))
    nodeKey.set(m[1]!, m[2]!);

  it('reads a non-trivial table out of the sources', () => {
    expect(subsystem).toBe('memory');
    expect(procfsField.size).toBeGreaterThan(50);
    expect(nodeKey.size).toBeGreaterThan(45);
    expect(procfsField.get('Active(anon)')).toBe('ActiveAnonBytes');
    expect(nodeKey.get('ActiveAnonBytes')).toBe('Active_anon_bytes');
  });

  it('names every field node_exporter 1.9+ exports exactly as it does', () => {
    let checked = 0;
    for (const [procName, field] of procfsField) {
      const key = nodeKey.get(field);
      if (key === undefined) continue; // a field procfs parses but node_exporter does not export
      const unit = field.endsWith('Bytes') ? 'bytes' : 'count';
      expect(nodeMemoryName(procName, unit), procName).toBe(fq(subsystem, key));
      checked++;
    }
    expect(checked).toBe(nodeKey.size);
  });

  it('names every line of real meminfo files by the rule of node_exporter 1.3-1.8, with its help and type', async () => {
    // `reParens = regexp.MustCompile(`\((.*)\)`)` and `ReplaceAllString(key, "_${1}")`.
    const re = new RegExp(one(/regexp\.MustCompile\(`([^`]+)`\)/, oldGo, 'the parentheses regexp')[1]!);
    // Go's `${1}` is JavaScript's `$1`.
    const repl = one(/ReplaceAllString\(key, "([^"]+)"\)/, oldGo, 'the replacement')[1]!.replace(
      /\$\{(\d)\}/g,
      '$$$1',
    );
    const kbSuffix = one(/key = key \+ "(\w+)"/, oldGo, 'the kB suffix')[1]!;
    expect(oldGo).toContain('fv *= 1024');
    let lines = 0;
    for (const dir of [...MEMINFO_DIRS, labFixture('6.1', 'after'), labFixture('6.12', 'after')]) {
      const text = readFileSync(join(dir, 'meminfo'), 'utf8');
      const families = new Map((await familiesOf(dir)).map((f) => [f.name, f]));
      for (const raw of text.split('\n')) {
        const parts = raw.trim().split(/\s+/);
        if (parts.length < 2) continue;
        let key = parts[0]!.slice(0, -1).replace(re, repl);
        // A wrapped-negative %lu (2.6.29's DirectMap2M: 18446744073709551613) is read as the
        // negative it encodes (src/sources/meminfo.ts); node_exporter's float64 would say 1.8e19.
        const big = BigInt(parts[1]!);
        let value = big >= 2n ** 64n - 2n ** 53n ? Number(big - 2n ** 64n) : Number(parts[1]);
        if (parts.length === 3) {
          value *= 1024;
          key += kbSuffix;
        }
        const f = families.get(fq(subsystem, key));
        expect(f, `${dir}: ${raw}`).toBeDefined();
        expect(f!.help).toBe(sprintf(helpFormat, key));
        expect(f!.type).toBe(key.endsWith(counterSuffix) ? 'counter' : 'gauge');
        expect(f!.labels).toEqual([]);
        expect(f!.samples).toEqual([{ labels: [], value }]);
        lines++;
      }
      // Nothing more under node_memory_ than the file's lines.
      const lineCount = parseMeminfo(text).fields.length;
      expect([...families.keys()].filter((n) => n.startsWith('node_memory_'))).toHaveLength(lineCount);
    }
    expect(lines).toBeGreaterThan(200);
  });
});

describe('node_exporter names: buddyinfo, slabinfo, vmstat', () => {
  it('node_buddyinfo_blocks as collector/buddyinfo.go declares it, one per zone and order', async () => {
    const src = go('a7dcc3a/collector/buddyinfo.go');
    const subsystem = one(/buddyInfoSubsystem\s*=\s*"(\w+)"/, src, 'subsystem')[1]!;
    const m = one(
      /prometheus\.BuildFQName\(namespace, buddyInfoSubsystem, "(\w+)"\),\s*"([^"]+)",\s*\[\]string\{([^}]*)\}/,
      src,
      'the blocks desc',
    );
    const labels = m[3]!.split(',').map((x) => x.trim().replace(/"/g, ''));
    expect(src).toMatch(/prometheus\.GaugeValue, value,\s*entry\.Node, entry\.Zone, strconv\.Itoa\(size\)/);
    const doc = REGISTRY.buddyinfo.metrics!.families[0]!;
    expect({ name: doc.name, help: doc.help, labels: doc.labels, type: doc.type }).toEqual({
      name: fq(subsystem, m[1]!),
      help: m[2],
      labels,
      type: 'gauge',
    });
    // procfs: node is the number without its comma, size the order (the index of the count).
    const dir = labFixture('6.12', 'after');
    const f = (await familiesOf(dir)).find((x) => x.name === doc.name)!;
    const text = readFileSync(join(dir, 'buddyinfo'), 'utf8').trim().split('\n');
    const want = text.flatMap((line) => {
      const p = line.trim().split(/\s+/);
      return p.slice(4).map((n, size) => ({
        labels: [p[1]!.replace(/,$/, ''), p[3]!.replace(/,$/, ''), String(size)],
        value: Number(n),
      }));
    });
    expect(f.samples).toEqual(want);
  });

  it('node_slabinfo_* as collector/slabinfo_linux.go declares them, values from the columns procfs reads', async () => {
    const src = go('a7dcc3a/collector/slabinfo_linux.go');
    const procfs = go('procfs-v0.21.1/slab.go');
    const subsystem = one(/subsystem:\s*"(\w+)"/, src, 'subsystem')[1]!;
    const labels = one(/labels:\s*\[\]string\{([^}]*)\}/, src, 'labels')[1]!
      .split(',')
      .map((x) => x.trim().replace(/"/g, ''));
    // ch <- c.activeObjects(slab.Name, slab.ObjActive)
    const calls = new Map(
      [...src.matchAll(/ch <- c\.(\w+)\(slab\.Name, slab\.(\w+)\)/g)].map((m) => [m[1]!, m[2]!]),
    );
    // func (c *slabinfoCollector) activeObjects(...) { desc := NewDesc(BuildFQName(..., "active_objects"), "help", ...
    const funcs = [
      ...src.matchAll(
        /func \(c \*slabinfoCollector\) (\w+)\([^)]*\) prometheus\.Metric \{\s*desc := prometheus\.NewDesc\(\s*prometheus\.BuildFQName\(namespace, c\.subsystem, "(\w+)"\),\s*"([^"]+)",[\s\S]*?prometheus\.(\w+)Value/g,
      ),
    ].map((m) => ({ fn: m[1]!, name: fq(subsystem, m[2]!), help: m[3]!, type: m[4]!.toLowerCase() }));
    expect(funcs).toHaveLength(5);
    // procfs parseV21SlabEntry: i.ObjActive, err = strconv.ParseInt(s[1], 10, 64)
    const column = new Map(
      [...procfs.matchAll(/i\.(\w+), err = strconv\.ParseInt\(s\[(\d+)\]/g)].map((m) => [
        m[1]!,
        Number(m[2]),
      ]),
    );
    const docs = REGISTRY.slabinfo.metrics!.families.filter((d) => d.name.startsWith('node_slabinfo_'));
    expect(docs.map((d) => ({ name: d.name, help: d.help, type: d.type, labels: d.labels }))).toEqual(
      funcs.map((f) => ({ name: f.name, help: f.help, type: f.type, labels })),
    );
    const dir = labFixture('6.12', 'after');
    const families = await familiesOf(dir);
    const lines = readFileSync(join(dir, 'slabinfo'), 'utf8').split('\n').slice(2).filter(Boolean);
    expect(lines.length).toBe(parseSlabinfo(readFileSync(join(dir, 'slabinfo'), 'utf8')).caches.length);
    for (const f of funcs) {
      const col = column.get(calls.get(f.fn)!)!;
      const fam = families.find((x) => x.name === f.name)!;
      expect(fam.samples).toEqual(
        lines.map((l) => {
          const s = l.trim().split(/\s+/);
          return { labels: [s[0]], value: Number(s[col]) };
        }),
      );
    }
  });

  it('node_vmstat_* as collector/vmstat_linux.go names them, with its default fields', async () => {
    const src = go('a7dcc3a/collector/vmstat_linux.go');
    const subsystem = one(/vmStatSubsystem\s*=\s*"(\w+)"/, src, 'subsystem')[1]!;
    const fields = one(
      /"collector\.vmstat\.fields",[^)]*\)\.Default\("([^"]+)"\)/,
      src,
      'default fields',
    )[1]!;
    const help = one(/fmt\.Sprintf\("([^"]+)", parts\[0\]\)/, src, 'help format')[1]!;
    expect(src).toContain('prometheus.UntypedValue');
    expect(NODE_VMSTAT_FIELDS.source).toBe(fields);
    const dir = join(REPO_FIXTURES, 'live-6.18');
    const families = (await familiesOf(dir)).filter((f) => f.name.startsWith('node_vmstat_'));
    const want = readFileSync(join(dir, 'vmstat'), 'utf8')
      .split('\n')
      .map((l) => l.split(' '))
      .filter((p) => p.length === 2 && new RegExp(fields).test(p[0]!));
    expect(want.length).toBeGreaterThan(5);
    expect(families).toEqual(
      want.map(([name, value]) => ({
        name: fq(subsystem, name!),
        help: sprintf(help, name!),
        type: 'untyped',
        labels: [],
        samples: [{ labels: [], value: Number(value) }],
      })),
    );
  });
});
