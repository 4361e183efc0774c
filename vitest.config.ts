import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 30 * 60_000,
    pool: 'forks',
    // One temporary directory per run for the unpacked lab fixtures (test/paths.ts).
    globalSetup: ['test/setup/lab-fixtures.ts'],
    reporters: ['default'],
  },
});
