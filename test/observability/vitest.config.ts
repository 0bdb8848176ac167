// The observability suite (npm run test:observability): real Jaeger (built from its Go module) and
// real Prometheus (Debian's package) on loopback, fed by a real controller and two chained proxies.
// global-setup.ts runs build-tools.sh (cached) and hands the binaries' paths to the test files.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

if (process.versions.node.split('.')[0] !== '24') {
  throw new Error(`fhirmesh tests need Node 24 (found ${process.version}): run them with npm or npx vitest`);
}

export default defineConfig({
  test: {
    root: fileURLToPath(new URL('../..', import.meta.url)),
    include: ['test/observability/**/*.test.ts'],
    globalSetup: ['test/observability/global-setup.ts'],
    // Two cores shared with other work: one file at a time, each with its own Jaeger or Prometheus.
    fileParallelism: false,
    pool: 'forks',
    testTimeout: 90_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
    reporters: ['default'],
  },
});
