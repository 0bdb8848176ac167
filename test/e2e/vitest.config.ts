// The real-node e2e project (npm run test:e2e → test/e2e/run.sh, which builds what it needs and
// runs this inside the suite's network namespace). One cluster for the run, files one at a time.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

if (process.versions.node.split('.')[0] !== '24') {
  throw new Error(`fhirmesh tests need Node 24 (found ${process.version}): run them with npm run test:e2e`);
}

export default defineConfig({
  test: {
    root: fileURLToPath(new URL('../..', import.meta.url)),
    include: ['test/e2e/**/*.test.ts'],
    globalSetup: ['test/e2e/node/global-setup.ts'],
    fileParallelism: false,
    pool: 'forks',
    // Each step waits for real pods: image unpack, probes, rollouts.
    testTimeout: 240_000,
    hookTimeout: 300_000,
    teardownTimeout: 120_000,
    reporters: ['default'],
  },
});
