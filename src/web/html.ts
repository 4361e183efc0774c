/**
 * One self-contained HTML file: the page's script and styles (bundled by esbuild at build time,
 * dist/web/page.js and page.css) and its data, all inline. It opens from disk or a mail
 * attachment with no network: its Content-Security-Policy allows no request at all.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MemsleuthError } from '../model/errors.js';
import type { PageData } from './types.js';

const HERE = dirname(fileURLToPath(import.meta.url));

let assets: { js: string; css: string } | undefined;

/** The bundled page: beside this file in dist/web, or dist/web from the sources (tests). */
export function pageAssets(): { js: string; css: string } {
  if (assets) return assets;
  for (const dir of [HERE, join(HERE, '..', '..', 'dist', 'web')]) {
    const js = join(dir, 'page.js');
    const css = join(dir, 'page.css');
    if (existsSync(js) && existsSync(css)) {
      assets = { js: readFileSync(js, 'utf8'), css: readFileSync(css, 'utf8') };
      return assets;
    }
  }
  throw new MemsleuthError('IO', `the web page bundle (page.js, page.css) is missing beside ${HERE}`, {
    hint: 'build it: npm run build',
  });
}

/** JSON safe inside <script>: no `</script>`, no `<!--`, no U+2028/2029 surprises. */
function inlineJson(data: unknown): string {
  return JSON.stringify(data)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

/** Inline code may run, nothing may be fetched: `connect` only to the dashboard's own /api. */
function csp(kind: PageData['kind']): string {
  return [
    "default-src 'none'",
    "script-src 'unsafe-inline'",
    "style-src 'unsafe-inline'",
    'img-src data:',
    kind === 'serve' ? "connect-src 'self'" : "connect-src 'none'",
  ].join('; ');
}

/** The page with `data` inlined. */
export function pageHtml(data: PageData): string {
  const { js, css } = pageAssets();
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp(data.kind)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(`memsleuth — ${data.title}`)}</title>
<style>${css.replace(/<\/style/gi, '<\\/style')}</style>
</head>
<body>
<div id="app"></div>
<script id="memsleuth-data" type="application/json">${inlineJson(data)}</script>
<script>${js.replace(/<\/script/gi, '<\\/script')}</script>
</body>
</html>
`;
}
