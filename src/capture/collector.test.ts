import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SYSTEM_SOURCES } from '../model/snapshot.js';
import { COLLECTOR_PATH, collectorScript, collectorScriptInSync, collectorSourceBlock } from './collector.js';

describe('the sh collector follows the source table', () => {
  it('the shipped script holds the block SYSTEM_SOURCES gives (else: npm run collector:sources)', async () => {
    expect(await collectorScriptInSync()).toBe(true);
  });

  it('reads every system source once, debugfs through $DEBUGFS, page_owner skippable', () => {
    const block = collectorSourceBlock();
    for (const s of SYSTEM_SOURCES) {
      const lines = block.split('\n').filter((l) => l.trimStart().startsWith(`source_file ${s.name} `));
      expect(lines, s.name).toHaveLength(1);
      expect(lines[0]).toContain(s.livePath.startsWith('/sys/kernel/debug/') ? '"$DEBUGFS/' : s.livePath);
    }
    expect(block).toMatch(/if \[ "\$page_owner" = 1 \]; then\n {2}source_file page_owner /);
    expect(block).toContain("missing page_owner 'skipped (--no-page-owner)' 'omit --no-page-owner'");
  });

  it('quotes hints with single quotes for sh', () => {
    // kmemleak's hint has backquotes, which must not run as a command.
    expect(collectorSourceBlock()).toContain("'needs CONFIG_DEBUG_KMEMLEAK");
  });

  it('stamps the version the manifests will name', async () => {
    const s = await collectorScript('9.9.9');
    expect(s).toMatch(/^MSL_VERSION=9\.9\.9$/m);
    expect(readFileSync(COLLECTOR_PATH, 'utf8')).not.toMatch(/^MSL_VERSION=9\.9\.9$/m);
  });
});
