// The controller's admin listener (loopback by default): liveness, readiness, Prometheus metrics,
// and, to loopback clients only, /debug/status (route statuses and connected proxies).

import http from 'node:http';
import type { ControllerMetrics } from '../telemetry/metrics.ts';

export interface AdminServerOptions {
  metrics: ControllerMetrics;
  /** Why the controller is not ready, or undefined when it is (source read once, gRPC listening, not stopping). */
  notReadyReason: () => string | undefined;
  /** The body of /debug/status; computed per request. */
  debugStatus: () => unknown;
}

export function createAdminServer(options: AdminServerOptions): http.Server {
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
        const reason = options.notReadyReason();
        if (reason === undefined) send(res, 200, 'text/plain', 'ready\n');
        else send(res, 503, 'text/plain', `not ready: ${reason}\n`);
        return;
      }
      case '/metrics':
        options.metrics.registry
          .metrics()
          .then((text) => send(res, 200, options.metrics.registry.contentType, text))
          .catch((err: unknown) => send(res, 500, 'text/plain', `metrics failed: ${String(err)}\n`));
        return;
      case '/debug/status':
        send(res, 200, 'application/json', JSON.stringify(options.debugStatus(), null, 2) + '\n');
        return;
      default:
        send(res, 404, 'text/plain', 'not found: try /healthz, /readyz, /metrics, /debug/status\n');
    }
  });
}

function isLoopback(address: string | undefined): boolean {
  return address !== undefined && (address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.'));
}

function send(res: http.ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}
