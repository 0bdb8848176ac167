// The cluster-test project (npm run test:cluster): a real etcd + kube-apiserver started once by
// global-setup.ts, test files one at a time because they share it. Build the binaries first:
// bash test/cluster/build/build-control-plane.sh
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

if (process.versions.node.split('.')[0] !== '24') {
  throw new Error(`fhirmesh tests need Node 24 (found ${process.version}): run them with npm or npx vitest`);
}

export default defineConfig({
  test: {
    root: fileURLToPath(new URL('../..', import.meta.url)),
    include: ['test/cluster/**/*.test.ts'],
    globalSetup: ['test/cluster/global-setup.ts'],
    fileParallelism: false,
    pool: 'forks',
    testTimeout: 60_000,
    // beforeAll hooks may start a control plane of their own.
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
    reporters: ['default'],
  },
});
