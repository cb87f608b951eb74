import { defineConfig } from 'vitest/config';

/**
 * Tests that put the machine under steady load, or measure memory and failure rates that other
 * tests' load would distort; they run after every other test, one file at a time (the machines
 * here have 2 cores).
 */
const LOAD_TESTS = [
  'test/integration/mtls-mesh.test.ts',
  'test/integration/intermediary-streaming.test.ts',
  'test/integration/outlier.test.ts',
  'test/integration/edge-ratelimit-rate.test.ts',
  'test/integration/observability-prometheus.test.ts',
  'test/integration/faults-fast.test.ts',
];

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          pool: 'threads',
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          exclude: LOAD_TESTS,
          // Real processes and sockets: one fork per file, files in parallel up to the core count.
          pool: 'forks',
          testTimeout: 60_000,
          hookTimeout: 60_000,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'load',
          include: LOAD_TESTS,
          pool: 'forks',
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 60_000,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
