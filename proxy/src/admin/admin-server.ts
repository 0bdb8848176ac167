// The proxy's admin listener (loopback by default, runtime/'s skeleton): liveness, readiness, metrics
// and /debug/routes, the table in force. Private keys never leave: it shows only that TLS material is set.

import type * as Http from 'node:http';
import type { CompiledBackend, CompiledRoute } from '../../../api/index.ts';
import { createAdminServer as createAdminListener } from '../../../runtime/index.ts';
import type { TableHolder } from '../table/table-holder.ts';
import type { ProxyMetrics } from '../telemetry/metrics.ts';

export interface AdminServerOptions {
  intermediaryId: string;
  holder: TableHolder;
  metrics: ProxyMetrics;
  isDraining: () => boolean;
}

export function createAdminServer(options: AdminServerOptions): Http.Server {
  return createAdminListener({
    metrics: options.metrics.registry,
    readiness: () => {
      if (options.isDraining()) return { ready: false, detail: 'draining' };
      if (!options.holder.loaded) return { ready: false, detail: 'no route table loaded yet' };
      return { ready: true, detail: `ready, table ${options.holder.current.version}` };
    },
    debug: {
      '/debug/routes': () => {
        const table = options.holder.current;
        return {
          intermediaryId: options.intermediaryId,
          loaded: options.holder.loaded,
          version: table.version,
          loadedAt: table.loadedAt.toISOString(),
          routes: table.routes.map(redactRoute),
        };
      },
    },
  });
}

function redactBackend(backend: CompiledBackend): unknown {
  const { tls, ...rest } = backend;
  if (tls === undefined) return rest;
  return {
    ...rest,
    tls: {
      serverName: tls.serverName,
      ca: tls.caPem !== undefined ? 'set' : 'system roots',
      clientCertificate: tls.certPem !== undefined ? 'set' : 'none',
    },
  };
}

function redactRoute(route: CompiledRoute): unknown {
  return {
    ...route,
    backend: redactBackend(route.backend),
    rules: route.rules.map((rule) => ({ ...rule, backend: redactBackend(rule.backend) })),
  };
}
