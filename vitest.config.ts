import { defineConfig } from 'vitest/config';

// node_modules/.bin/vitest run by hand picks the system Node from PATH; npm test and npx put the
// pinned Node 24 first. Refuse the wrong one instead of testing a runtime we do not ship.
if (process.versions.node.split('.')[0] !== '24') {
  throw new Error(`fhirmesh tests need Node 24 (found ${process.version}): run them with npm test or npx vitest`);
}

export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts', 'test/hostile/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
