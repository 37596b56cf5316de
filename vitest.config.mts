import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // The addon is context-aware, so both pools work; forks keeps each file in its own process.
    pool: 'forks',
    testTimeout: 60_000,
  },
});
