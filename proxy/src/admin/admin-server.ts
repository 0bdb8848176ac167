// The admin listener (loopback by default): liveness, readiness, Prometheus metrics and, to loopback
// clients only, the table in force. Private keys never leave: /debug/routes shows only that TLS is set.

import { http } from '../internal/builtins.ts';
import type * as Http from 'node:http';
import type { CompiledBackend, CompiledRoute } from '../../../api/index.ts';
import type { TableHolder } from '../table/table-holder.ts';
import type { ProxyMetrics } from '../telemetry/metrics.ts';

export interface AdminServerOptions {
  intermediaryId: string;
  holder: TableHolder;
  metrics: ProxyMetrics;
  isDraining: () => boolean;
}

export function createAdminServer(options: AdminServerOptions): Http.Server {
  return http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain', 'only GET\n');
      return;
    }
    // /debug shows tables and proxies: the pod IP serves probes and Prometheus, /debug only
    // loopback (kubectl port-forward arrives on loopback too).
    if (path?.startsWith('/debug/') === true && !isLoopback(req.socket.remoteAddress)) {
      send(res, 403, 'text/plain', `${path} answers loopback clients only: use kubectl port-forward\n`);
      return;
    }
    switch (path) {
      case '/healthz':
        send(res, 200, 'text/plain', 'ok\n');
        return;
      case '/readyz': {
        if (options.isDraining()) send(res, 503, 'text/plain', 'draining\n');
        else if (!options.holder.loaded) send(res, 503, 'text/plain', 'no route table loaded yet\n');
        else send(res, 200, 'text/plain', `ready, table ${options.holder.current.version}\n`);
        return;
      }
      case '/metrics':
        options.metrics.registry
          .metrics()
          .then((text) => send(res, 200, options.metrics.registry.contentType, text))
          .catch((err: unknown) => send(res, 500, 'text/plain', `metrics failed: ${String(err)}\n`));
        return;
      case '/debug/routes': {
        const table = options.holder.current;
        const body = {
          intermediaryId: options.intermediaryId,
          loaded: options.holder.loaded,
          version: table.version,
          loadedAt: table.loadedAt.toISOString(),
          routes: table.routes.map(redactRoute),
        };
        send(res, 200, 'application/json', JSON.stringify(body, null, 2) + '\n');
        return;
      }
      default:
        send(res, 404, 'text/plain', 'not found: try /healthz, /readyz, /metrics, /debug/routes\n');
    }
  });
}

function isLoopback(address: string | undefined): boolean {
  return address !== undefined && (address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.'));
}

function send(res: Http.ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
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
