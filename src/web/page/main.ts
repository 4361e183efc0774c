/**
 * Entry point of the page bundle (esbuild, scripts/build-web.mjs). An HTML report carries its
 * data in <script id="memsleuth-data" type="application/json">; the dashboard's page carries
 * only what the server is, and fetches the rest from /api.
 */
import { render } from 'preact';
import type { PageData } from '../types.js';
import { App } from './app.js';
import { html } from './html.js';
import { apiSource, inlineSource } from './source.js';

const el = document.getElementById('memsleuth-data');
const data = JSON.parse(el?.textContent ?? '{}') as PageData;
const token = new URLSearchParams(location.search).get('token') ?? undefined;
const src = data.kind === 'serve' ? apiSource(data, token) : inlineSource(data);
const hasFlames = (data.flames?.length ?? 0) > 0;
render(html`<${App} src=${src} hasFlames=${hasFlames} />`, document.getElementById('app')!);
