import { defineConfig } from 'vitest/config';

/**
 * The fault-injection suite (`npm run test:faults`) and the soak (`npm run test:soak`):
 * real processes on loopback under steady load, one file at a time (they measure failure
 * counts, memory and descriptors that other tests' load would distort). `WEFT_SOAK=1` selects
 * the soak file only. The fast subset of the same scenarios runs in the default `npm test`
 * (test/integration/faults-fast.test.ts, in the `load` project).
 */
const soak = process.env.WEFT_SOAK === '1';

export default defineConfig({
  test: {
    include: soak ? ['test/faults/soak.test.ts'] : ['test/faults/**/*.test.ts'],
    exclude: soak ? [] : ['test/faults/soak.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: soak ? 900_000 : 300_000,
    hookTimeout: 90_000,
  },
});
