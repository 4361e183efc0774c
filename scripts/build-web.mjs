// Bundles the page (src/web/page) into dist/web/page.js and page.css with esbuild: what
// src/web/html.ts inlines into every HTML report and serves to the dashboard. Part of
// `npm run build`.
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'web');
mkdirSync(out, { recursive: true });
const common = { bundle: true, minify: true, legalComments: 'eof', logLevel: 'warning', absWorkingDir: root };
await build({
  ...common,
  entryPoints: ['src/web/page/main.ts'],
  outfile: join(out, 'page.js'),
  format: 'iife',
  target: 'es2020',
  platform: 'browser',
});
await build({ ...common, entryPoints: ['src/web/page/style.css'], outfile: join(out, 'page.css') });
