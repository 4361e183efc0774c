/**
 * Lets a worker thread started from the TypeScript sources (under vitest) load `.ts`
 * modules: Node 20 has no type stripping, so this registers resolve/load hooks that map
 * `./x.js` to `./x.ts` when only the TypeScript exists and transpile it with the
 * project's own TypeScript. Built code (dist/) never uses it.
 * Used as `--import` by src/analysis/page_owner_parallel.ts.
 */
import { register } from 'node:module';

register('./ts-worker-loader.mjs', import.meta.url);
