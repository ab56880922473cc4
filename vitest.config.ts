import { defineConfig } from 'vitest/config';
import { svelte } from '@sveltejs/vite-plugin-svelte';

export default defineConfig({
  // Compiles .svelte files, so components render in Node tests through svelte/server.
  plugins: [svelte()],
  test: {
    // tfjs and Pyodide tests hold large runtimes; forks keep them apart and let the process exit.
    pool: 'forks',
    // The JSON report lets .ci/run print one 'N passed, N failed' line.
    reporters: ['default', ['json', { outputFile: 'test-results.json' }]],
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 240_000,
    projects: [
      {
        extends: true,
        // Unit tests first, then the browser tests: run side by side, a CPU-bound browser (SwiftShader)
        // starves the sandbox's timing tests on a 2-core machine.
        test: { name: 'unit', include: ['tests/unit/**/*.test.ts'], environment: 'node', sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['tests/e2e/**/*.test.ts'],
          sequence: { groupOrder: 1 },
          environment: 'node',
          globalSetup: ['tests/e2e/global-setup.ts'],
          // One browser at a time: SwiftShader WebGPU is CPU-bound and the machine has 2 cores.
          maxWorkers: 1,
          // A browser test trains, reloads and waits on a CPU-bound page: its waits, each bounded, add up to minutes.
          testTimeout: 360_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
