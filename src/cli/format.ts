/** Output helpers shared by the human-readable presenters. */

export type Align = 'left' | 'right';

export interface Column<T> {
  header: string;
  align?: Align;
  /** Maximum width; longer cells are cut with an ellipsis. */
  max?: number;
  value(row: T): string;
}

/** A plain-text table with one space of gutter; cells never wrap. */
export function table<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const cells = rows.map((r) =>
    columns.map((c) => {
      const v = c.value(r);
      return c.max !== undefined && v.length > c.max ? `${v.slice(0, c.max - 1)}…` : v;
    }),
  );
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((r) => r[i]!.length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => (columns[i]!.align === 'right' ? v.padStart(widths[i]!) : v.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.header)), ...cells.map(line)].join('\n');
}

/** A section heading. */
export function heading(title: string): string {
  return `\n${title}\n${'─'.repeat(Math.min(title.length, 100))}`;
}

/** Wrap text at `width` columns; continuation lines get `indent`. Words longer than a line are kept whole. */
export function wrap(text: string, width = 100, indent = '', firstIndent = ''): string {
  const words = text.split(/\s+/).filter(Boolean);
  const lines: string[] = [];
  let cur = firstIndent;
  let fresh = true;
  for (const w of words) {
    if (!fresh && cur.length + 1 + w.length > width) {
      lines.push(cur);
      cur = indent + w;
    } else {
      cur += (fresh ? '' : ' ') + w;
    }
    fresh = false;
  }
  lines.push(cur);
  return lines.join('\n');
}

/** A registry table (cells already formatted) as plain text. */
export function renderTable(t: {
  columns: { header: string; align?: Align; max?: number }[];
  rows: string[][];
}): string {
  return table(
    t.rows,
    t.columns.map((c, i) => ({ ...c, value: (row: string[]) => row[i] ?? '' })),
  );
}
