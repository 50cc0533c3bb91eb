import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/helpers/temp-dirs.setup.ts'],
    // Integration and e2e tests share one Docker Engine on a 2-core machine: run files one at a time
    // there, but keep pure unit tests parallel.
    fileParallelism: true,
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
