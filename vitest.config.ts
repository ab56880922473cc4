import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    environment: 'node',
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // tfjs and Pyodide tests hold large runtimes; forks keep them apart and let the process exit.
    pool: 'forks',
    maxWorkers: 2,
  },
});
