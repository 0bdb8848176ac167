// The admin listener both processes run (loopback by default): /healthz, /readyz, /metrics and the
// /debug pages each process names, those to loopback clients only. GET and HEAD only; every other
// path answers 404 with the list.

import type * as Http from 'node:http';

// Fetched with process.getBuiltinModule, not imported: building the ESM namespace of node:http loads
// Node's bundled undici, about 10 MiB of RSS in every sidecar for nothing (bench/memory).
const http: typeof Http = process.getBuiltinModule('node:http');

/** What /metrics serves: a runtime/metrics Registry, or anything shaped like one. */
export interface MetricsText {
  metrics(): Promise<string>;
  readonly contentType: string;
}

export interface AdminServerOptions {
  metrics: MetricsText;
  /** /readyz: 200 when ready, else 503; `detail` is the one-line body. Asked per request. */
  readiness: () => { ready: boolean; detail: string };
  /** Path → the JSON body of a debug page, computed per request, e.g. { '/debug/status': () => ... }. */
  debug: Record<string, () => unknown>;
}

export function createAdminServer(options: AdminServerOptions): Http.Server {
  const paths = ['/healthz', '/readyz', '/metrics', ...Object.keys(options.debug)].join(', ');
  return http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain', 'only GET\n');
      return;
    }
    // /debug shows tables and proxies: the pod IP serves probes and Prometheus, /debug only
    // loopback (kubectl port-forward arrives on loopback too).
    if (path.startsWith('/debug/') && !isLoopback(req.socket.remoteAddress)) {
      send(res, 403, 'text/plain', `${path} answers loopback clients only: use kubectl port-forward\n`);
      return;
    }
    switch (path) {
      case '/healthz':
        send(res, 200, 'text/plain', 'ok\n');
        return;
      case '/readyz': {
        const { ready, detail } = options.readiness();
        send(res, ready ? 200 : 503, 'text/plain', `${detail}\n`);
        return;
      }
      case '/metrics':
        options.metrics
          .metrics()
          .then((text) => send(res, 200, options.metrics.contentType, text))
          .catch((err: unknown) => send(res, 500, 'text/plain', `metrics failed: ${String(err)}\n`));
        return;
      default: {
        const page = Object.hasOwn(options.debug, path) ? options.debug[path] : undefined;
        if (page === undefined) send(res, 404, 'text/plain', `not found: try ${paths}\n`);
        else send(res, 200, 'application/json', JSON.stringify(page(), null, 2) + '\n');
      }
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
