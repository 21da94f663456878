import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Two cores: more workers only make the database suites fight over them.
    maxWorkers: 2,
    // Files share their worker's module cache (each test isolates its data: its own schema, database, data folder or
    // subject prefix), so xstate, kysely, PGlite and NATS load twice per run instead of once per file.
    isolate: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    teardownTimeout: 20_000,
  },
});
