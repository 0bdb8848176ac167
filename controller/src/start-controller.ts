// Runs one controller in the mode createMode() built: source → snapshot store → discovery server,
// desired statuses and their reconciler, admin listener. main.ts and the tests start it the same way.

import { startInjector, type RunningInjector } from './injector/index.ts';
import { addressText, closeServer, createAdminServer, listen, listenFailure, type Logger } from '../../runtime/index.ts';
import type { ControllerConfig } from './config/flags.ts';
import type { ControllerMode } from './controller-mode.ts';
import { ConvergenceTracker, DiscoveryServer, ProxyRegistry, ServingCertificate, SnapshotStore, trustIdentityClaims } from './discovery/index.ts';
import { DesiredStatuses, StatusReconciler, viewsOfRecords } from './status/index.ts';
import type { ControllerMetrics } from './telemetry/metrics.ts';

export interface StartOptions {
  /** How often --grpc-tls-cert/--grpc-tls-key are read again; default 10 s. */
  tlsReloadIntervalMs?: number;
}

export interface RunningController {
  /** host:port the discovery server is bound to. */
  grpcAddress: string;
  adminUrl: string;
  /** Resolves once the source has been read and proxies are being answered; rejects if it cannot be. */
  ready: Promise<void>;
  store: SnapshotStore;
  registry: ProxyRegistry;
  /** Every route's desired status: what is written, shown on /debug/status and counted in metrics. */
  statuses: DesiredStatuses;
  metrics: ControllerMetrics;
  /** Streams closed with UNAVAILABLE, listeners closed, the mode stopped. */
  shutdown(): Promise<void>;
}

export async function startController(config: ControllerConfig, mode: ControllerMode, options: StartOptions = {}): Promise<RunningController> {
  const { source, logger, metrics, controllerId, authenticate, tracer } = mode;
  // First: a certificate that cannot serve stops the start before anything listens or reads.
  const servingCertificate =
    config.grpcTls === undefined
      ? undefined
      : ServingCertificate.load(config.grpcTls, { logger, ...(options.tlsReloadIntervalMs === undefined ? {} : { reloadIntervalMs: options.tlsReloadIntervalMs }) });

  const store = new SnapshotStore({ source, batchWindowMs: config.batchWindowMs, logger, metrics, tracer });
  const registry = new ProxyRegistry();
  const statuses = new DesiredStatuses({
    translation: () => store.current,
    proxyViews: () => [viewsOfRecords(registry.list()), ...(mode.remoteProxyViews?.() ?? [])],
    ...(mode.storedStatus === undefined ? {} : { stored: (key: string) => mode.storedStatus?.(key) }),
  });
  const reconciler = new StatusReconciler({
    statuses,
    ...(mode.statusSink === undefined ? {} : { sink: mode.statusSink }),
    logger,
    metrics,
    delayMs: Math.max(config.batchWindowMs, 10),
    tracer,
    cause: () => store.changeOf(store.current),
  });
  const convergence = new ConvergenceTracker({ translation: () => store.current, proxies: () => registry.list(), connected: (proxy) => registry.has(proxy), metrics });
  // Handlers only schedule: convergence is checked and statuses are refreshed from current state.
  store.subscribe((translation, changeSeenAtMs, previous) => {
    convergence.translated(translation, changeSeenAtMs, previous);
    reconciler.schedule();
  });
  registry.onChange(() => {
    convergence.check();
    reconciler.schedule();
  });
  mode.attach?.({ registry, store, statuses, reconciler });

  const server = new DiscoveryServer({ store, registry, authenticate, ackTimeoutMs: config.ackTimeoutMs, controllerId, metrics, logger, tracer });
  metrics.countProxiesWith(() => server.syncStateCounts());
  metrics.countRoutesWith(() => statuses.conditionCounts());
  let stopping = false;
  const notReadyReason = (): string | undefined => (stopping ? 'shutting down' : store.isReady ? undefined : `routes not read yet from ${source.description}`);
  const admin = createAdminServer({
    metrics: metrics.registry,
    readiness: () => {
      const reason = notReadyReason();
      return reason === undefined ? { ready: true, detail: 'ready' } : { ready: false, detail: `not ready: ${reason}` };
    },
    debug: {
      '/debug/status': () => ({
        controllerId,
        ready: store.isReady && !stopping,
        source: source.description,
        version: store.current?.version ?? '',
        routes: statuses.entries().map(([key, status]) => ({ key, status })),
        proxies: server.proxyStatuses(),
        ...mode.debugStatus?.(),
      }),
    },
  });

  let grpcBound: { host: string; port: number };
  let adminBound: { host: string; port: number };
  try {
    grpcBound = await server.listen(config.grpcListen.host, config.grpcListen.port, servingCertificate?.serverCredentials()).catch((err: unknown) => {
      throw listenFailure('--grpc-listen', config.grpcListen, err);
    });
    adminBound = await listen(admin, config.adminListen.host, config.adminListen.port).catch((err: unknown) => {
      throw listenFailure('--admin-listen', config.adminListen, err);
    });
  } catch (err) {
    await server.shutdown(0);
    servingCertificate?.close();
    admin.close();
    await tracer.shutdown();
    throw err;
  }
  const grpcAddress = addressText(grpcBound);
  const adminUrl = `http://${addressText(adminBound)}`;
  const authenticated = authenticate !== trustIdentityClaims;
  if (!authenticated) {
    logger.log(
      'warn',
      `discovery streams are unauthenticated${servingCertificate === undefined ? ' and plaintext' : ''}: each proxy is served the namespace it claims; expose --grpc-listen only on loopback or a trusted network`,
      { grpcAddress },
    );
  } else if (servingCertificate === undefined) {
    // Only --insecure-grpc gets here (flags.ts refuses Kubernetes mode without TLS otherwise).
    logger.log(
      'warn',
      'INSECURE: --insecure-grpc serves route discovery in plaintext: proxies\' service-account tokens and route tables cross the network unencrypted and can be read or replayed; use it only where the network itself is encrypted (a mesh with mTLS) or on loopback',
      { grpcAddress },
    );
  }
  // Last: the line that says the controller is up comes after every warning about how it is up.
  logger.log('info', 'controller listening', {
    grpcAddress,
    adminUrl,
    source: source.description,
    controllerId,
    grpcTls: servingCertificate === undefined ? 'off (plaintext)' : servingCertificate.describe(),
    proxyAuthentication: authenticated ? 'service-account token (TokenReview), namespace from the token' : 'none (the claimed namespace is served)',
  });

  // The sidecar injection webhook (--injector-*): pure per request, it needs nothing else of the controller.
  let injector: RunningInjector | undefined;
  if (config.injector !== undefined) {
    try {
      // Its lines say `injector`, through the controller's own logger (silent where that is silent).
      const injectorLogger: Logger = { enabled: (level) => logger.enabled(level), log: (level, msg, fields) => logger.log(level, msg, { ...fields, component: 'injector' }) };
      injector = await startInjector(config.injector, { logger: injectorLogger });
    } catch (err) {
      await server.shutdown(0);
      servingCertificate?.close();
      await closeServer(admin);
      throw err;
    }
  }

  // Listening first, reading second: proxies may connect at once and wait for the first read (rule 1).
  const ready = store.start().then(() => {
    reconciler.reconcile();
  });
  // The caller awaits `ready`; this keeps a failure before it does from counting as unhandled.
  ready.catch(() => undefined);

  return {
    grpcAddress,
    adminUrl,
    ready,
    store,
    registry,
    statuses,
    metrics,
    async shutdown() {
      if (stopping) return;
      stopping = true;
      reconciler.stop();
      store.stop();
      await server.shutdown();
      servingCertificate?.close();
      await source.stop();
      await injector?.close();
      await closeServer(admin);
      // The spans of the last changes are exported before the process goes.
      await tracer.shutdown().catch((err: unknown) => logger.log('warn', 'could not export the last spans', { error: String(err) }));
      logger.log('info', 'controller stopped');
    },
  };
}
