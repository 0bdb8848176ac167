// Wires one proxy together (table from a routes file, forwarder, listeners, reload) for main.ts
// and for tests that run it in-process; returns a handle that shuts it down gracefully.

import { addressText, closeServer, describeTracing, listen, listenFailure, startTracing } from '../../runtime/index.ts';
import { createAdminServer } from './admin/admin-server.ts';
import type { ProxyConfig } from './config/flags.ts';
import { EngineServer } from './engine/engine-server.ts';
import { UpstreamPools } from './engine/upstream-pool.ts';
import { TableHolder } from './table/table-holder.ts';
import { createLogger, type Logger } from './telemetry/logger.ts';
import { ProxyMetrics } from './telemetry/metrics.ts';
import { RequestTelemetry } from './telemetry/request-telemetry.ts';
import type { RequestTracer } from './telemetry/request-tracer.ts';
import { PROXY_VERSION } from './config/flags.ts';

export interface RunningProxy {
  url: string;
  adminUrl: string;
  holder: TableHolder;
  metrics: ProxyMetrics;
  /** Graceful stop: resolves with how many requests had to be cut after the grace period. */
  shutdown(graceMs?: number): Promise<number>;
}

export async function startProxy(
  config: ProxyConfig,
  deps: { logger?: Logger; metrics?: ProxyMetrics; tracer?: RequestTracer; watchOptions?: { debounceMs?: number; pollMs?: number } } = {},
): Promise<RunningProxy> {
  const logger = deps.logger ?? createLogger({ level: config.logLevel, component: 'proxy', ...(config.redactHeaders !== undefined ? { redactHeaders: config.redactHeaders } : {}) });
  const metrics = deps.metrics ?? new ProxyMetrics();
  // First: a listener certificate that cannot serve stops the start before anything runs.
  const listenTls = config.listenTls === undefined ? undefined : (await import('./engine/tls-listener.ts')).tlsListener(config.listenTls, logger);
  // The OpenTelemetry SDK is loaded only when tracing is configured: a sidecar without it never pays its memory.
  const tracer = deps.tracer ?? (config.tracing === undefined ? undefined : await startRequestTracer(config));
  const holder = new TableHolder();
  const pool = new UpstreamPools();
  // A table whose backends cannot be used (a PEM that does not load) is refused before it is in force.
  holder.checkBeforeInstall((table) => pool.prepare(table.routes));
  holder.onInstall((table) => {
    pool.retainOnly(table.routes.flatMap((r) => [r.backend, ...r.rules.map((rule) => rule.backend)]));
    metrics.tableLoaded(table.size, table.loadedAt, table.version);
  });
  metrics.countSocketsWith(() => pool.usage());
  metrics.measureStalenessWith(() => holder.staleSeconds());

  // Each source is loaded only when used: the file source pulls in the YAML parser and the CRD's
  // schema and CEL rules, the controller source gRPC and protobuf (about 17 MiB of RSS).
  const source =
    config.controller !== undefined
      ? (await import('./discovery/controller-source.ts')).startControllerSource(config.controller, holder, logger, metrics)
      : (await import('./table/file-source.ts')).startFileSource(config.routesFile ?? '', holder, logger, metrics, deps.watchOptions);

  const common = {
    intermediaryId: config.intermediaryId,
    holder,
    logger,
    telemetry: new RequestTelemetry({
      metrics,
      logger,
      accessLog: config.accessLog,
      ...(tracer !== undefined ? { tracer } : {}),
      ...(config.logHeaders !== undefined ? { logHeaders: config.logHeaders } : {}),
    }),
    ...(config.limits !== undefined ? { limits: config.limits } : {}),
  };
  const proxy = new EngineServer({ ...common, pools: pool }, listenTls === undefined ? undefined : (listener) => listenTls.create(listener));
  const admin = createAdminServer({ intermediaryId: config.intermediaryId, holder, metrics, isDraining: () => proxy.draining });
  let bound: { host: string; port: number };
  let adminBound: { host: string; port: number };
  try {
    bound = await proxy.listen(config.listen.host, config.listen.port).catch((err: unknown) => {
      throw listenFailure('--listen', config.listen, err);
    });
    adminBound = await listen(admin, config.adminListen.host, config.adminListen.port).catch((err: unknown) => {
      throw listenFailure('--admin-listen', config.adminListen, err);
    });
  } catch (err) {
    // Nothing may be left running (listener, file watch, stream) for a caller that carries on.
    source.close();
    proxy.server.close();
    pool.destroy();
    await tracer?.shutdown();
    throw err;
  }
  const url = `${listenTls === undefined ? 'http' : 'https'}://${addressText(bound)}`;
  const adminUrl = `http://${addressText(adminBound)}`;
  logger.log('info', 'proxy listening', { url, adminUrl, intermediaryId: config.intermediaryId, tracing: describeTracing(config.tracing) });

  return {
    url,
    adminUrl,
    holder,
    metrics,
    async shutdown(graceMs = config.shutdownGraceMs) {
      source.close();
      const cut = await proxy.shutdown(graceMs);
      listenTls?.close();
      pool.destroy();
      await closeServer(admin);
      // Spans of the last requests are exported before the process goes.
      await tracer?.shutdown().catch((err: unknown) => logger.log('warn', 'could not export the last spans', { error: String(err) }));
      logger.log('info', 'proxy stopped', { cutRequests: cut });
      return cut;
    },
  };
}

async function startRequestTracer(config: ProxyConfig): Promise<RequestTracer> {
  const settings = config.tracing;
  if (settings === undefined) throw new Error('startRequestTracer needs tracing settings');
  const tracing = await startTracing(settings, { serviceName: 'fhirmesh-proxy', serviceVersion: PROXY_VERSION, instanceId: config.intermediaryId });
  const { createOtelRequestTracer } = await import('./telemetry/internal/otel-request-tracer.ts');
  return createOtelRequestTracer(tracing);
}
