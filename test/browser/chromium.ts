/**
 * Debian's chromium (scripts/ensure-deps.sh installs it), driven by playwright-core: headless,
 * a fresh profile per launch, nothing downloaded, no background traffic. Pages fail the test on
 * any console error or uncaught exception (`errors`).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

export interface Browser {
  context: BrowserContext;
  /** A new page whose console errors and page errors are collected in `errors`. */
  page(opts?: { offline?: boolean }): Promise<{ page: Page; errors: string[]; requests: string[] }>;
  close(): Promise<void>;
}

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: run scripts/ensure-deps.sh as root (Debian package chromium)`);
  const profile = mkdtempSync(join(tmpdir(), 'memsleuth-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  return {
    context,
    async page(opts = {}) {
      const page = await context.newPage();
      const errors: string[] = [];
      const requests: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(String(e)));
      page.on('request', (r) => requests.push(r.url()));
      if (opts.offline) {
        // Nothing but the page itself: every other request is aborted (and recorded).
        await page.route('**/*', (route) =>
          route.request().url().startsWith('file://')
            ? route.continue()
            : route.abort('internetdisconnected'),
        );
      }
      return { page, errors, requests };
    },
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** What a chart of the page was given (the page registers them in window.memsleuthCharts). */
export async function chartRaw<T>(page: Page, name: string): Promise<T> {
  return (await page.evaluate(`window.memsleuthCharts?.[${JSON.stringify(name)}]?.raw`)) as T;
}

/** The computed style property of the first element matching `selector`. */
export async function styleOf(page: Page, selector: string, prop: string): Promise<string> {
  return (await page.evaluate(
    `getComputedStyle(document.querySelector(${JSON.stringify(selector)})).${prop}`,
  )) as string;
}
