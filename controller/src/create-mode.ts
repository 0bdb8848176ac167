// Builds the mode the flags name: standalone over a directory of YAML, or Kubernetes (informers,
// status writes, leader election), whose module and Kubernetes client are loaded only then.

import os from 'node:os';
import { createLogger, startTracing, type Logger } from '../../runtime/index.ts';
import { CONTROLLER_VERSION, type ControllerConfig } from './config/flags.ts';
import type { ControllerMode } from './controller-mode.ts';
import { trustIdentityClaims } from './discovery/index.ts';
import type { KubernetesTuning } from './kubernetes/index.ts';
import { DirectorySource } from './sources/index.ts';
import { type ChangeTracer, NO_TRACING } from './telemetry/change-tracer.ts';
import { ControllerMetrics } from './telemetry/metrics.ts';

/** Knobs that are not flags: timing for tests, in-process parts in place of the process's own. */
export interface ModeTuning {
  logger?: Logger;
  metrics?: ControllerMetrics;
  tracer?: ChangeTracer;
  /** Directory source: the longest wait from a watch event to its read, and the stat scan interval (over --routes-dir-poll). */
  directoryWatch?: { debounceMs?: number; pollMs?: number };
  kubernetes?: KubernetesTuning;
}

export async function createMode(config: ControllerConfig, tuning: ModeTuning = {}): Promise<ControllerMode> {
  const logger = tuning.logger ?? createLogger({ level: config.logLevel, component: 'controller' });
  const metrics = tuning.metrics ?? new ControllerMetrics();
  const controllerId = config.source.kind === 'kubernetes' ? config.source.replicaId : os.hostname();
  // The OpenTelemetry SDK is loaded only when OTEL_* names an endpoint.
  const tracer = tuning.tracer ?? (config.tracing === undefined ? NO_TRACING : await startChangeTracer(config, controllerId));
  if (config.source.kind === 'kubernetes') {
    const { createKubernetesMode } = await import('./kubernetes/index.ts');
    return createKubernetesMode({
      source: config.source,
      ...(config.namespace === undefined ? {} : { namespace: config.namespace }),
      logger,
      metrics,
      tracer,
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
    pollMs: config.source.pollMs,
    ...tuning.directoryWatch,
  });
  return {
    source,
    authenticate: trustIdentityClaims,
    controllerId,
    logger,
    metrics,
    tracer,
    debugStatus: () => ({ refusedFiles: source.refusedFiles() }),
  };
}

async function startChangeTracer(config: ControllerConfig, controllerId: string): Promise<ChangeTracer> {
  if (config.tracing === undefined) return NO_TRACING;
  const tracing = await startTracing(config.tracing, { serviceName: 'fhirmesh-controller', serviceVersion: CONTROLLER_VERSION, instanceId: controllerId });
  const { createOtelChangeTracer } = await import('./telemetry/internal/otel-change-tracer.ts');
  return createOtelChangeTracer(tracing);
}
