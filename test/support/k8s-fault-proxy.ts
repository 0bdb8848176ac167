// A plain-HTTP proxy on loopback in front of a real kube-apiserver, for informer tests: it forwards
// everything, streaming, and on command breaks watches as networks and apiservers do (410, drops, hangs).

import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';

export interface FaultProxyTarget {
  /** https://127.0.0.1:<port> of the apiserver. */
  url: string;
  caPem: string;
}

export interface RecordedRequest {
  method: string;
  /** Path and query. */
  path: string;
  watch: boolean;
  atMs: number;
}

/** One watch in flight: the client's response and the upstream request feeding it. */
interface OpenWatch {
  response: http.ServerResponse;
  upstream: http.ClientRequest | undefined;
  upstreamResponse: http.IncomingMessage | undefined;
  hung: boolean;
  /** Upstream cut on purpose: its errors must not end the client's side. */
  detached: boolean;
}

const EXPIRED_STATUS = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'too old resource version: 1 (2)', reason: 'Expired', code: 410 };
const EXPIRED_EVENT = JSON.stringify({ type: 'ERROR', object: EXPIRED_STATUS });

export class K8sFaultProxy {
  /** http://127.0.0.1:<port>: give clients this with TLS verification off (client-node allows http only so). */
  readonly url: string;
  readonly requests: RecordedRequest[] = [];
  readonly #server: http.Server;
  readonly #target: URL;
  readonly #agent: https.Agent;
  readonly #watches = new Set<OpenWatch>();
  #hangNew = false;
  #expireNext: { count: number; how: 'event' | 'status' } = { count: 0, how: 'event' };

  private constructor(server: http.Server, target: FaultProxyTarget) {
    this.#server = server;
    this.#target = new URL(target.url);
    this.#agent = new https.Agent({ ca: target.caPem, keepAlive: true });
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    server.on('request', (req, res) => this.#handle(req, res));
  }

  static async start(target: FaultProxyTarget): Promise<K8sFaultProxy> {
    const server = http.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return new K8sFaultProxy(server, target);
  }

  /** Watches open right now (hung ones included). */
  get openWatches(): number {
    return this.#watches.size;
  }

  /** Watch requests received since `sinceMs` (performance.now()). */
  watchRequests(sinceMs = 0): number {
    return this.requests.filter((r) => r.watch && r.atMs >= sinceMs).length;
  }

  listRequests(pathPart: string, sinceMs = 0): number {
    return this.requests.filter((r) => !r.watch && r.method === 'GET' && r.path.includes(pathPart) && r.atMs >= sinceMs).length;
  }

  /** The next `count` watch requests are answered 410 Gone: as an in-stream ERROR event then the end (what the apiserver does), or as the HTTP status. */
  expireNextWatches(count = 1, how: 'event' | 'status' = 'event'): void {
    this.#expireNext = { count, how };
  }

  /** Every open watch gets an ERROR 410 event and ends: its resourceVersion is too old, relist. */
  expireOpenWatches(): number {
    const open = [...this.#watches];
    for (const watch of open) {
      this.#detachUpstream(watch);
      watch.response.end(`${EXPIRED_EVENT}\n`);
      this.#watches.delete(watch);
    }
    return open.length;
  }

  /** Every open watch ends cleanly (as the apiserver's timeoutSeconds does); clients resume from their resourceVersion. */
  endOpenWatches(): number {
    const open = [...this.#watches];
    for (const watch of open) {
      this.#detachUpstream(watch);
      watch.response.end();
      this.#watches.delete(watch);
    }
    return open.length;
  }

  /** Every open watch's connection is cut mid-stream (a reset, a load balancer dropping it). */
  dropWatches(): number {
    const open = [...this.#watches];
    for (const watch of open) {
      this.#detachUpstream(watch);
      watch.response.socket?.destroy();
      this.#watches.delete(watch);
    }
    return open.length;
  }

  /**
   * Watches go silent: open ones stop receiving events, new ones get their headers and then nothing,
   * as through a half-open connection. Lists still pass. Until heal().
   */
  hangWatches(): void {
    this.#hangNew = true;
    for (const watch of this.#watches) {
      watch.hung = true;
      this.#detachUpstream(watch);
    }
  }

  /** New watches pass again. Watches already hung stay silent, as a half-open connection would. */
  heal(): void {
    this.#hangNew = false;
    this.#expireNext = { count: 0, how: 'event' };
  }

  async close(): Promise<void> {
    for (const watch of this.#watches) {
      this.#detachUpstream(watch);
      watch.response.socket?.destroy();
    }
    this.#watches.clear();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#agent.destroy();
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = req.url ?? '/';
    const query = new URL(path, 'http://x').searchParams;
    const watch = query.get('watch') === 'true' || query.get('watch') === '1';
    this.requests.push({ method: req.method ?? 'GET', path, watch, atMs: performance.now() });

    if (watch && this.#expireNext.count > 0) {
      this.#expireNext.count--;
      req.resume();
      if (this.#expireNext.how === 'status') {
        res.writeHead(410, { 'content-type': 'application/json' });
        res.end(JSON.stringify(EXPIRED_STATUS));
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(`${EXPIRED_EVENT}\n`);
      }
      return;
    }
    if (watch && this.#hangNew) {
      req.resume();
      const hung: OpenWatch = { response: res, upstream: undefined, upstreamResponse: undefined, hung: true, detached: true };
      this.#watches.add(hung);
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      res.flushHeaders();
      res.on('close', () => this.#watches.delete(hung));
      return;
    }

    const headers = { ...req.headers, host: this.#target.host };
    const upstream = https.request(
      { protocol: 'https:', hostname: this.#target.hostname, port: this.#target.port, method: req.method, path, headers, agent: this.#agent },
      (upstreamResponse) => {
        res.writeHead(upstreamResponse.statusCode ?? 502, upstreamResponse.headers);
        if (watch) {
          open.upstreamResponse = upstreamResponse;
          res.flushHeaders();
        }
        upstreamResponse.pipe(res);
      },
    );
    const open: OpenWatch = { response: res, upstream, upstreamResponse: undefined, hung: false, detached: false };
    if (watch) {
      this.#watches.add(open);
      res.on('close', () => {
        this.#watches.delete(open);
        upstream.destroy();
      });
    }
    upstream.on('error', () => {
      if (open.detached) return;
      if (!res.headersSent) res.writeHead(502).end();
      else res.socket?.destroy();
    });
    req.pipe(upstream);
  }

  /** Stops forwarding a watch's events and closes its upstream request, leaving the client's side as it is. */
  #detachUpstream(watch: OpenWatch): void {
    watch.detached = true;
    if (watch.upstreamResponse !== undefined) watch.upstreamResponse.unpipe(watch.response);
    watch.upstream?.destroy();
    watch.upstream = undefined;
    watch.upstreamResponse = undefined;
  }
}
