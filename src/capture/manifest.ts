import { excerpt, MemsleuthError } from '../model/errors.js';
import { MANIFEST_FORMAT, type Manifest, type MissingSource } from '../model/snapshot.js';

/**
 * Check a parsed manifest.json (as written by `memsleuth snapshot` or memsleuth-collect.sh)
 * and return it typed, or throw one BAD_INPUT error naming the first field that is missing
 * or of the wrong type. Fields a newer writer adds are kept as they are.
 */
export function validateManifest(value: unknown, file: string): Manifest {
  const fail = (field: string, expected: string, found: unknown): never => {
    const shown =
      found === undefined
        ? 'nothing (the field is missing)'
        : excerpt(JSON.stringify(found) ?? String(found));
    throw new MemsleuthError('BAD_INPUT', `${file}: field "${field}": expected ${expected}, found ${shown}`, {
      file,
      expected,
      found: shown,
      hint: 'manifest.json is written by `memsleuth snapshot` or memsleuth-collect.sh; capture again',
    });
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new MemsleuthError(
      'BAD_INPUT',
      `${file}: expected a JSON object with the snapshot's fields, found ${excerpt(JSON.stringify(value) ?? String(value))}`,
      {
        file,
        hint: 'manifest.json is written by `memsleuth snapshot` or memsleuth-collect.sh; capture again',
      },
    );
  }
  const m = value as Record<string, unknown>;
  if (m.format !== MANIFEST_FORMAT) {
    throw new MemsleuthError(
      'BAD_INPUT',
      `${file}: field "format": expected "${MANIFEST_FORMAT}", found ${m.format === undefined ? 'nothing (the field is missing)' : excerpt(JSON.stringify(m.format) ?? '')}`,
      { file, hint: 'was this written by a newer memsleuth?' },
    );
  }
  const str = (field: string, optional = false) => {
    const v = m[field];
    if (v === undefined && optional) return;
    if (typeof v !== 'string') fail(field, 'a string', v);
  };
  const num = (field: string, what: string, ok: (n: number) => boolean, optional = false) => {
    const v = m[field];
    if (v === undefined && optional) return;
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) fail(field, what, v);
  };
  str('tool');
  str('hostname');
  str('kernelRelease');
  str('kernelVersion', true);
  str('machine', true);
  num(
    'pageSizeBytes',
    'the page size in bytes, a power of two from 1024 to 1048576 (e.g. 4096)',
    (n) => Number.isInteger(n) && n >= 1024 && n <= 1 << 20 && (n & (n - 1)) === 0,
  );
  str('time');
  if (Number.isNaN(Date.parse(m.time as string))) fail('time', 'an ISO 8601 time', m.time);
  num('uptimeSeconds', 'seconds since boot (a number >= 0)', (n) => n >= 0);
  num('durationSeconds', 'seconds (a number >= 0)', (n) => n >= 0, true);
  if (!Array.isArray(m.files)) fail('files', 'an array of snapshot paths', m.files);
  (m.files as unknown[]).forEach((f, i) => {
    if (typeof f !== 'string' || f === '' || f.startsWith('/') || f.split('/').includes('..'))
      fail(`files[${i}]`, 'a relative snapshot path such as "proc/1/status"', f);
  });
  if (!Array.isArray(m.missing)) fail('missing', 'an array of {path, reason, enable}', m.missing);
  (m.missing as unknown[]).forEach((x, i) => {
    const s = x as Partial<MissingSource> | null;
    if (typeof s !== 'object' || s === null) fail(`missing[${i}]`, 'an object {path, reason, enable}', x);
    for (const k of ['path', 'reason', 'enable'] as const)
      if (typeof s?.[k] !== 'string') fail(`missing[${i}].${k}`, 'a string', s?.[k]);
  });
  if (m.skippedPids !== undefined) {
    if (!Array.isArray(m.skippedPids)) fail('skippedPids', 'an array of {pid, reason}', m.skippedPids);
    (m.skippedPids as unknown[]).forEach((x, i) => {
      const s = x as { pid?: unknown; reason?: unknown } | null;
      if (typeof s !== 'object' || s === null) fail(`skippedPids[${i}]`, 'an object {pid, reason}', x);
      if (typeof s?.pid !== 'number' || !Number.isSafeInteger(s.pid) || s.pid < 0)
        fail(`skippedPids[${i}].pid`, 'a process id', s?.pid);
      if (typeof s?.reason !== 'string') fail(`skippedPids[${i}].reason`, 'a string', s?.reason);
    });
  }
  return m as unknown as Manifest;
}

/** Parse manifest.json text: JSON, then validateManifest. */
export function parseManifest(text: string, file: string): Manifest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    // V8 quotes the input around the error: keep the message on one line, control bytes escaped.
    const why = JSON.stringify((e as Error).message).slice(1, -1);
    throw new MemsleuthError('BAD_INPUT', `${file}: not valid JSON (${why})`, {
      file,
      hint: 'manifest.json is written by `memsleuth snapshot` or memsleuth-collect.sh; capture again',
    });
  }
  return validateManifest(parsed, file);
}
