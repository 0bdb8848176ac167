// Controller-fed table source: starts from the last good table in the state dir (if any), then
// streams from the controller; readiness comes from whichever table arrives first.

import type { CompiledRoute } from '../../../api/index.ts';
import type { TableSource } from '../table/file-source.ts';
import type { TableHolder } from '../table/table-holder.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { ProxyMetrics } from '../telemetry/metrics.ts';
import { DiscoveryClient, type DiscoveryIdentity } from './discovery-client.ts';
import { loadState } from './state-file.ts';

export interface ControllerSourceConfig {
  /** host:port of the controller's gRPC listener. */
  address: string;
  identity: DiscoveryIdentity;
  stateDir: string | undefined;
  /** PEM CA bundle of the controller's gRPC certificate; plaintext when absent. */
  tls?: { caPem: string; serverName?: string };
  tokenFile?: string;
  backoff?: { initialMs: number; maxMs: number };
}

export function startControllerSource(config: ControllerSourceConfig, holder: TableHolder, logger: Logger, metrics: ProxyMetrics): TableSource {
  let initial: CompiledRoute[] | undefined;
  if (config.stateDir !== undefined) {
    try {
      const saved = loadState(config.stateDir);
      if (saved !== undefined) {
        holder.install(saved.snapshot);
        initial = saved.snapshot.routes;
        logger.log('info', 'route table loaded from the state dir', { stateDir: config.stateDir, version: saved.snapshot.version, routes: saved.snapshot.routes.length });
      }
    } catch (err) {
      // A damaged file must not keep the proxy from the controller's fresh table.
      logger.log('warn', 'state dir table unusable; waiting for the controller', { stateDir: config.stateDir, error: err instanceof Error ? err.message : String(err) });
    }
  }
  const client = new DiscoveryClient({
    controller: config.address,
    identity: config.identity,
    holder,
    logger,
    stateDir: config.stateDir,
    ...(initial !== undefined ? { initial } : {}),
    ...(config.backoff !== undefined ? { backoff: config.backoff } : {}),
    ...(config.tls !== undefined ? { tls: config.tls } : {}),
    ...(config.tokenFile !== undefined ? { tokenFile: config.tokenFile } : {}),
    onConnectionChange: (connected) => metrics.discoveryConnected(connected),
    onRefused: () => metrics.tableRejected(),
  });
  client.start();
  logger.log('info', 'route discovery started', {
    controller: config.address,
    nodeId: config.identity.nodeId,
    namespace: config.identity.namespace,
    tls: config.tls !== undefined,
    token: config.tokenFile !== undefined,
  });
  return { close: () => client.stop() };
}
