// Builds the mode the flags name: standalone over a directory of YAML, or Kubernetes (informers,
// status writes, leader election), whose module and Kubernetes client are loaded only then.

import os from 'node:os';
import { createLogger, type Logger } from '../../runtime/index.ts';
import type { ControllerConfig } from './config/flags.ts';
import type { ControllerMode } from './controller-mode.ts';
import { trustIdentityClaims } from './discovery/index.ts';
import type { KubernetesTuning } from './kubernetes/index.ts';
import { DirectorySource } from './sources/index.ts';
import { ControllerMetrics } from './telemetry/metrics.ts';

/** Knobs that are not flags: timing for tests, in-process parts in place of the process's own. */
export interface ModeTuning {
  logger?: Logger;
  metrics?: ControllerMetrics;
  /** Directory source: quiet time after a watch event and rescan interval. */
  directoryWatch?: { debounceMs?: number; pollMs?: number };
  kubernetes?: KubernetesTuning;
}

export async function createMode(config: ControllerConfig, tuning: ModeTuning = {}): Promise<ControllerMode> {
  const logger = tuning.logger ?? createLogger({ level: config.logLevel, component: 'controller' });
  const metrics = tuning.metrics ?? new ControllerMetrics();
  if (config.source.kind === 'kubernetes') {
    const { createKubernetesMode } = await import('./kubernetes/index.ts');
    return createKubernetesMode({
      source: config.source,
      ...(config.namespace === undefined ? {} : { namespace: config.namespace }),
      logger,
      metrics,
      ...(tuning.kubernetes === undefined ? {} : { tuning: tuning.kubernetes }),
    });
  }
  // One replica and no status to write: nothing to elect, so it is the one that acts (the no-leader alert stays quiet).
  metrics.leading(true);
  const source = new DirectorySource({
    dir: config.source.routesDir,
    ...(config.namespace === undefined ? {} : { namespace: config.namespace }),
    logger,
    onRefused: () => metrics.reconcileFailed('source'),
    ...tuning.directoryWatch,
  });
  return {
    source,
    authenticate: trustIdentityClaims,
    controllerId: os.hostname(),
    logger,
    metrics,
    debugStatus: () => ({ refusedFiles: source.refusedFiles() }),
  };
}
