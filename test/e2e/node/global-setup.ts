// vitest globalSetup of the e2e suite: one single-node cluster for the run (see node-cluster.ts),
// handed to the test files through provide/inject, stopped when the run ends.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import type { E2eContext } from './e2e-context.ts';
import { startNodeCluster } from './node-cluster.ts';

function helmBinary(): string {
  const candidates = [process.env['FHIRMESH_HELM'], path.join(process.env['FHIRMESH_CACHE'] || path.join(os.homedir(), '.cache/fhirmesh'), 'helm/v3.21.4/helm')];
  const found = candidates.find((file): file is string => file !== undefined && file !== '' && fs.existsSync(file));
  if (found === undefined) throw new Error('no helm: set FHIRMESH_HELM (.ci/run builds helm v3.21.4 into ~/.cache/fhirmesh/helm/v3.21.4)');
  return found;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const helm = helmBinary();
  const startedAt = performance.now();
  const cluster = await startNodeCluster();
  const context: E2eContext = {
    connection: cluster.connection,
    kubeconfig: cluster.kubeconfig,
    kubectl: cluster.kubectlBinary,
    helm,
    dir: cluster.dir,
    logsDir: cluster.logsDir,
    image: { name: process.env['FHIRMESH_IMAGE_NAME'] ?? '', tag: process.env['FHIRMESH_IMAGE_TAG'] ?? '' },
  };
  project.provide('fhirmeshE2e', context);
  const seconds = ((performance.now() - startedAt) / 1000).toFixed(1);
  console.log(`[e2e] node ready in ${seconds}s (${JSON.stringify(cluster.timings)}); KUBECONFIG=${cluster.kubeconfig}; logs in ${cluster.logsDir}`);
  return async () => {
    const stopping = performance.now();
    await cluster.stop();
    console.log(`[e2e] cluster stopped in ${((performance.now() - stopping) / 1000).toFixed(1)}s`);
  };
}
