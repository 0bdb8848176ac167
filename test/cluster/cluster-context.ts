// What cluster tests receive from global-setup.ts: the shared control plane's connection, as plain data
// (vitest provide/inject), plus the client and naming helpers every cluster test needs.

import crypto from 'node:crypto';
import { inject } from 'vitest';
import { KubeHttp, type KubeConnection } from './kube-http.ts';

export interface ClusterContext extends KubeConnection {
  kubeconfigPath: string;
  /** gitVersion the apiserver reports, e.g. v1.37.1. */
  version: string;
  serviceAccountIssuer: string;
  /** The key kube-apiserver signs service-account tokens with: for tokens it must refuse (expired ones). */
  serviceAccountSigningKeyPath: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    fhirmeshCluster: ClusterContext;
  }
}

/** The shared control plane; only inside the vitest project whose globalSetup is test/cluster/global-setup.ts. */
export function clusterContext(): ClusterContext {
  const context = inject('fhirmeshCluster');
  if (!context) {
    throw new Error('no control plane was provided: run cluster tests with --config test/cluster/vitest.config.ts');
  }
  return context;
}

/** An admin client for the shared control plane; close() it in afterAll. */
export function adminClient(): KubeHttp {
  return new KubeHttp(clusterContext());
}

/**
 * A DNS-1123 name unique to this run. Tests share one apiserver and, with no controller-manager, a
 * deleted namespace stays Terminating forever, so each test works in namespaces of its own.
 */
export function uniqueName(prefix: string): string {
  return `${prefix}-${crypto.randomBytes(4).toString('hex')}`;
}
