import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { REPO_ROOT } from '../paths.js';

/**
 * With MEMSLEUTH_SCREENSHOTS=1, the browser tests save what they look at as docs/<name>.png
 * (the screenshots in README.md and docs/web.md). Otherwise nothing is written.
 */
export async function screenshot(page: Page, name: string): Promise<void> {
  if (!process.env.MEMSLEUTH_SCREENSHOTS) return;
  await page.waitForTimeout(300);
  await page.screenshot({ path: join(REPO_ROOT, 'docs', `${name}.png`), fullPage: false });
}
