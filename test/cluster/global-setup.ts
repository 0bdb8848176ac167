// vitest globalSetup for the cluster tests: one etcd + kube-apiserver for the whole run, handed to the
// test files through provide/inject (see cluster-context.ts), stopped when the run ends.

import type { TestProject } from 'vitest/node';
import type { ClusterContext } from './cluster-context.ts';
import { startControlPlane } from './control-plane.ts';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const startedAt = performance.now();
  const plane = await startControlPlane();
  const context: ClusterContext = {
    ...plane.connection,
    kubeconfigPath: plane.kubeconfigPath,
    version: plane.version,
    serviceAccountIssuer: plane.serviceAccountIssuer,
    serviceAccountSigningKeyPath: plane.serviceAccountSigningKeyPath,
  };
  project.provide('fhirmeshCluster', context);
  const seconds = ((performance.now() - startedAt) / 1000).toFixed(1);
  console.log(`[cluster] Kubernetes ${plane.version} ready at ${plane.url} in ${seconds}s; KUBECONFIG=${plane.kubeconfigPath}`);
  return async () => {
    await plane.stop();
  };
}
