#!/usr/bin/env node
// fhirmesh-controller: reads flags, refuses bad ones with one line (exit 2), starts the controller
// (one line, exit 1, if it cannot) and stops it gracefully on SIGTERM/SIGINT (exit 0).

import { FlagError, CONTROLLER_USAGE, parseControllerFlags } from './config/flags.ts';
import { isControllerError } from './errors.ts';
import { startInjector, type RunningInjector } from './injector/index.ts';
import { loadKubernetesMode, type KubernetesMode } from './kubernetes-seam.ts';
import { startController, type ControllerDeps } from './start-controller.ts';
import { createLogger } from './telemetry/logger.ts';
import { ControllerMetrics } from './telemetry/metrics.ts';

let config;
try {
  config = parseControllerFlags(process.argv.slice(2), process.env);
} catch (err) {
  const message = err instanceof FlagError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') ? (err as Error).message : String(err);
  process.stderr.write(`fhirmesh-controller: ${message} (fhirmesh-controller --help lists every flag)\n`);
  process.exit(2);
}
if (config === 'help') {
  process.stdout.write(CONTROLLER_USAGE);
  process.exit(0);
}

let controller;
let injector: RunningInjector | undefined;
try {
  // Kubernetes mode is built here rather than inside startController so that every flag of it (the
  // replica id, leader election) reaches it, and so that it can be attached to the running controller.
  let deps: ControllerDeps = {};
  let mode: KubernetesMode | undefined;
  if (config.source.kind === 'kubernetes') {
    const logger = createLogger({ level: config.logLevel, component: 'controller' });
    const metrics = new ControllerMetrics();
    const { kubeconfig, replicaId, replicaPod, leaderElection } = config.source;
    mode = await loadKubernetesMode({
      ...(kubeconfig === undefined ? {} : { kubeconfig }),
      ...(config.namespace === undefined ? {} : { namespace: config.namespace }),
      replicaId,
      ...(replicaPod === undefined ? {} : { replicaPod }),
      ...(leaderElection === undefined ? {} : { leaderElection }),
      logger,
      metrics,
    });
    deps = {
      logger,
      metrics,
      source: mode.source,
      statusSink: mode.statusSink,
      controllerId: replicaId,
      ...(mode.authenticate === undefined ? {} : { authenticate: mode.authenticate }),
    };
  }
  controller = await startController(config, deps);
  mode?.attach?.({ registry: controller.registry, store: controller.store });
  // The sidecar injection webhook (--injector-*): pure per request, it needs nothing of the controller.
  if (config.injector !== undefined) injector = await startInjector(config.injector, { logger: createLogger({ level: config.logLevel, component: 'injector' }) });
} catch (err) {
  // A mode this build does not have is a bad combination of flags, like any other: exit 2.
  const unavailable = isControllerError(err) && err.code === 'FHIRMESH_MODE_UNAVAILABLE';
  process.stderr.write(`fhirmesh-controller: ${unavailable ? '' : 'cannot start: '}${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(unavailable ? 2 : 1);
}
const running = controller;
let stopping = false;
const stop = (signal: string, exitCode: number): void => {
  if (stopping) return;
  stopping = true;
  process.stdout.write(JSON.stringify({ time: new Date().toISOString(), level: 'info', component: 'controller', msg: 'shutting down', signal }) + '\n');
  Promise.all([running.shutdown(), injector?.close()]).then(
    () => process.exit(exitCode),
    (err: unknown) => {
      process.stderr.write(`fhirmesh-controller: shutdown failed: ${String(err)}\n`);
      process.exit(1);
    },
  );
};
process.on('SIGTERM', () => stop('SIGTERM', 0));
process.on('SIGINT', () => stop('SIGINT', 0));
running.ready.catch((err: unknown) => {
  process.stderr.write(`fhirmesh-controller: cannot read routes: ${err instanceof Error ? err.message : String(err)}\n`);
  if (!stopping) {
    stopping = true;
    running.shutdown().finally(() => process.exit(1)).catch(() => process.exit(1));
  }
});
