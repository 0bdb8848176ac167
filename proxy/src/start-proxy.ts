// Wires one proxy together (table from a routes file, forwarder, listeners, reload) for main.ts
// and for tests that run it in-process; returns a handle that shuts it down gracefully.

import { addressText, closeServer, describeTracing, listen, listenFailure, startTracing } from '../../runtime/index.ts';
import { createAdminServer } from './admin/admin-server.ts';
import type { ProxyConfig } from './config/flags.ts';
import { Forwarder } from './forward/forwarder.ts';
import { UpstreamPool } from './forward/upstream-pool.ts';
import { ProxyServer } from './server/proxy-server.ts';
import { startControllerSource } from './discovery/controller-source.ts';
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
  // The OpenTelemetry SDK is loaded only when tracing is configured: a sidecar without it never pays its memory.
  const tracer = deps.tracer ?? (config.tracing === undefined ? undefined : await startRequestTracer(config));
  const holder = new TableHolder();
  const pool = new UpstreamPool();
  holder.onInstall((table) => {
    pool.retainOnly(table.routes.flatMap((r) => [r.backend, ...r.rules.map((rule) => rule.backend)]));
    metrics.tableLoaded(table.size, table.loadedAt, table.version);
  });
  metrics.countSocketsWith(() => pool.usage());
  metrics.measureStalenessWith(() => holder.staleSeconds());

  // The file source pulls in the YAML parser and the CRD schema validator; a proxy fed by the
  // controller gets compiled routes and never loads them (about 14 MiB less per sidecar).
  const source =
    config.controller !== undefined
      ? startControllerSource(config.controller, holder, logger, metrics)
      : (await import('./table/file-source.ts')).startFileSource(config.routesFile ?? '', holder, logger, metrics, deps.watchOptions);

  const proxy = new ProxyServer({
    intermediaryId: config.intermediaryId,
    holder,
    forwarder: new Forwarder(pool, config.intermediaryId),
    logger,
    telemetry: new RequestTelemetry({
      metrics,
      logger,
      accessLog: config.accessLog,
      ...(tracer !== undefined ? { tracer } : {}),
      ...(config.logHeaders !== undefined ? { logHeaders: config.logHeaders } : {}),
    }),
    ...(config.limits !== undefined ? { limits: config.limits } : {}),
  });
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
  const url = `http://${addressText(bound)}`;
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
