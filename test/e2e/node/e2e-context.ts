// What global setup hands the e2e test files (provide/inject): plain data only.

import { inject } from 'vitest';
import type { KubeConnection } from '../../cluster/kube-http.ts';

export interface E2eContext {
  connection: KubeConnection;
  kubeconfig: string;
  kubectl: string;
  helm: string;
  dir: string;
  logsDir: string;
  image: { name: string; tag: string };
}

declare module 'vitest' {
  export interface ProvidedContext {
    fhirmeshE2e: E2eContext;
  }
}

export function e2eContext(): E2eContext {
  return inject('fhirmeshE2e');
}
