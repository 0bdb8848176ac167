// The design card's engine, http-proxy 1.18, in its best configuration: a keep-alive Agent
// (without one it opens a connection per request), xfwd off, target parsed once.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import httpProxy from 'http-proxy';
import { appendVia, stripHopByHop } from '../internal/forward-headers.ts';
import { failUpstream } from '../internal/upstream-failure.ts';
import { authorityOf, KEEP_ALIVE_MS, MAX_UPSTREAM_CONNECTIONS } from './engine.ts';
import type { ForwardingEngine, UpstreamAddress } from './engine.ts';

// Not a static import: the ES namespace of node:http loads Node's bundled undici (~12 MB).
const { Agent } = process.getBuiltinModule('node:http');

export function createEngine(upstream: UpstreamAddress): ForwardingEngine {
  const agent = new Agent({
    keepAlive: true,
    keepAliveMsecs: KEEP_ALIVE_MS,
    maxSockets: MAX_UPSTREAM_CONNECTIONS,
    maxFreeSockets: MAX_UPSTREAM_CONNECTIONS,
    scheduling: 'lifo',
  });
  const proxy = httpProxy.createProxyServer({
    target: `http://${authorityOf(upstream)}`,
    agent,
    xfwd: false,
    changeOrigin: true, // Host names the upstream, as for the other engines
    ws: false,
  });

  // http-proxy copies response headers as they came, hop-by-hop ones included; this event
  // fires before it writes them, which is the hook it offers for exactly this.
  proxy.on('proxyRes', (proxyRes: IncomingMessage) => stripHopByHop(proxyRes.headers));
  proxy.on('error', (error: Error, _req: IncomingMessage, res: ServerResponse | Socket) => {
    if ('writeHead' in res) failUpstream(res, error);
    else res.destroy();
  });

  function handleRequest(req: IncomingMessage, res: ServerResponse): void {
    // http-proxy forwards req.headers (copied per request), so the rules go there.
    stripHopByHop(req.headers);
    appendVia(req.headers);
    proxy.web(req, res);
  }

  return {
    handleRequest,
    close: () => {
      proxy.close();
      agent.destroy();
      return Promise.resolve();
    },
  };
}
