import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    reporters: ['default', './test/support/summary-reporter.ts'],
    // Tests start real processes (coordinators, workers, checkpointed jobs);
    // give each one room but never let a run hang.
    testTimeout: 120_000,
    hookTimeout: 60_000,
    // The machines have 2 cores; suites that start many processes would
    // starve each other if run with more parallelism.
    maxWorkers: 2,
    pool: 'forks',
  },
});
