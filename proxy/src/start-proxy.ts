// Wires one proxy together (table from a routes file, forwarder, listeners, reload) for main.ts
// and for tests that run it in-process; returns a handle that shuts it down gracefully.

import type http from 'node:http';
import { createAdminServer } from './admin/admin-server.ts';
import type { ProxyConfig } from './config/flags.ts';
import { Forwarder } from './forward/forwarder.ts';
import { UpstreamPool } from './forward/upstream-pool.ts';
import { ProxyServer } from './server/proxy-server.ts';
import { startControllerSource } from './discovery/controller-source.ts';
import { TableHolder } from './table/table-holder.ts';
import { createLogger, type Logger } from './telemetry/logger.ts';
import { ProxyMetrics } from './telemetry/metrics.ts';

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
  deps: { logger?: Logger; metrics?: ProxyMetrics; watchOptions?: { debounceMs?: number; pollMs?: number } } = {},
): Promise<RunningProxy> {
  const logger = deps.logger ?? createLogger({ level: config.logLevel, component: 'proxy' });
  const metrics = deps.metrics ?? new ProxyMetrics();
  const holder = new TableHolder();
  const pool = new UpstreamPool();
  holder.onInstall((table) => {
    pool.retainOnly(table.routes.flatMap((r) => [r.backend, ...r.rules.map((rule) => rule.backend)]));
    metrics.tableLoaded(table.size, table.loadedAt);
  });

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
    metrics,
    accessLog: config.accessLog,
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
    throw err;
  }
  const url = `http://${hostForUrl(bound.host)}:${bound.port}`;
  const adminUrl = `http://${hostForUrl(adminBound.host)}:${adminBound.port}`;
  logger.log('info', 'proxy listening', { url, adminUrl, intermediaryId: config.intermediaryId });

  return {
    url,
    adminUrl,
    holder,
    metrics,
    async shutdown(graceMs = config.shutdownGraceMs) {
      source.close();
      const cut = await proxy.shutdown(graceMs);
      pool.destroy();
      admin.closeAllConnections();
      await new Promise<void>((resolve) => admin.close(() => resolve()));
      logger.log('info', 'proxy stopped', { cutRequests: cut });
      return cut;
    },
  };
}

function listen(server: http.Server, host: string, port: number): Promise<{ host: string; port: number }> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address();
      if (address === null || typeof address === 'string') reject(new Error('listener has no TCP address'));
      else resolve({ host: address.address, port: address.port });
    });
  });
}

/** Names the address and the flag that set it: a bare EADDRINUSE does not say which listener. */
function listenFailure(flag: string, address: { host: string; port: number }, err: unknown): Error {
  const code = (err as NodeJS.ErrnoException).code;
  const why =
    code === 'EADDRINUSE'
      ? 'the address is already in use; stop what holds it or choose another port'
      : code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN'
        ? 'no such local address; use an address of this host, e.g. 0.0.0.0 or 127.0.0.1'
        : code === 'EACCES'
          ? 'permission denied; ports below 1024 need privileges, choose a higher port'
          : String(err);
  return new Error(`cannot listen on ${hostForUrl(address.host)}:${address.port} (${flag}): ${why}${code === undefined ? '' : ` (${code})`}`, { cause: err });
}

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
