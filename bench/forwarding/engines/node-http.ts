// Candidate with no dependency: node:http's own client over a keep-alive Agent. Bodies move
// with Readable.pipe (backpressure included); errors and aborts are wired by hand, because
// stream.pipeline costs an AbortController and a DOMException per call (~8% of CPU here).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { downstreamResponseHeaders, upstreamRequestHeaders } from '../internal/forward-headers.ts';
import { failUpstream } from '../internal/upstream-failure.ts';
import { authorityOf, KEEP_ALIVE_MS, MAX_UPSTREAM_CONNECTIONS } from './engine.ts';
import type { ForwardingEngine, UpstreamAddress } from './engine.ts';

// Not a static import: the ES namespace of node:http loads Node's bundled undici (~12 MB).
const { Agent, request } = process.getBuiltinModule('node:http');

export function createEngine(upstream: UpstreamAddress): ForwardingEngine {
  const agent = new Agent({
    keepAlive: true,
    keepAliveMsecs: KEEP_ALIVE_MS,
    maxSockets: MAX_UPSTREAM_CONNECTIONS,
    maxFreeSockets: MAX_UPSTREAM_CONNECTIONS,
    scheduling: 'lifo',
  });
  const upstreamAuthority = authorityOf(upstream);

  function handleRequest(req: IncomingMessage, res: ServerResponse): void {
    const upstreamReq = request({
      agent,
      host: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      // A flat list is written as given: originator order, case and repeats survive.
      headers: upstreamRequestHeaders(req.rawHeaders, upstreamAuthority),
      setHost: false,
    });

    upstreamReq.on('response', (upstreamRes: IncomingMessage) => {
      res.writeHead(upstreamRes.statusCode ?? 502, downstreamResponseHeaders(upstreamRes.rawHeaders));
      // pipe() does not pass errors on: an upstream reset mid-body must abort the client.
      upstreamRes.on('error', () => res.destroy());
      upstreamRes.pipe(res);
    });
    upstreamReq.on('error', (error: Error) => failUpstream(res, error));
    // The originator went away before its response was done: end the upstream exchange too.
    res.on('close', () => {
      if (!res.writableFinished) upstreamReq.destroy();
    });
    req.pipe(upstreamReq);
  }

  return {
    handleRequest,
    close: () => {
      agent.destroy();
      return Promise.resolve();
    },
  };
}
