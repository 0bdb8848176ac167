// undici's pooled HTTP/1.1 client (one Pool, pipelining 1), driven two ways: `dispatch` (the
// handler API; the default, see docs/performance.md) and `stream` (the public streaming API,
// raw headers on request), kept so the choice can be re-checked with --undici-api stream.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import { downstreamResponseHeaders, requestHasBody, upstreamRequestHeaders } from '../internal/forward-headers.ts';
import type { UndiciApi } from '../internal/messages.ts';
import { failUpstream } from '../internal/upstream-failure.ts';
import { authorityOf, KEEP_ALIVE_MS, MAX_UPSTREAM_CONNECTIONS } from './engine.ts';
import type { ForwardingEngine, UpstreamAddress } from './engine.ts';

export function createEngine(upstream: UpstreamAddress, api: UndiciApi): ForwardingEngine {
  const upstreamAuthority = authorityOf(upstream);
  const pool = new Pool(`http://${upstreamAuthority}`, {
    connections: MAX_UPSTREAM_CONNECTIONS,
    pipelining: 1,
    keepAliveTimeout: KEEP_ALIVE_MS,
    keepAliveMaxTimeout: KEEP_ALIVE_MS,
  });

  function requestOptions(req: IncomingMessage): Dispatcher.DispatchOptions {
    return {
      path: req.url ?? '/',
      method: req.method ?? 'GET',
      headers: upstreamRequestHeaders(req.rawHeaders, upstreamAuthority),
      // undici would send a chunked empty body for a stream on GET; only pass one that exists.
      body: requestHasBody(req.rawHeaders) ? req : null,
    };
  }

  const handleRequest =
    api === 'stream'
      ? (req: IncomingMessage, res: ServerResponse): void => {
          pool.stream({ ...requestOptions(req), opaque: res, responseHeaders: 'raw' }, writeResponseHead, onStreamDone);
        }
      : (req: IncomingMessage, res: ServerResponse): void => {
          pool.dispatch(requestOptions(req), new ResponseForwarder(res));
        };

  return { handleRequest, close: () => pool.close() };
}

// `opaque` carries the response through undici, so no closure is made per request.
function writeResponseHead({ statusCode, headers, opaque }: Dispatcher.StreamFactoryData<ServerResponse>): ServerResponse {
  opaque.writeHead(statusCode, downstreamResponseHeaders(headers as unknown as string[]));
  return opaque;
}

function onStreamDone(error: Error | null, data: { opaque: ServerResponse }): void {
  if (error) failUpstream(data.opaque, error);
}

/** What `stream` does underneath, minus its AsyncResource scope and Writable bookkeeping. */
class ResponseForwarder implements Dispatcher.DispatchHandler {
  readonly #res: ServerResponse;
  #controller: Dispatcher.DispatchController | null = null;

  constructor(res: ServerResponse) {
    this.#res = res;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    // The originator went away before the response finished: stop the upstream exchange.
    this.#res.once('close', () => {
      if (!this.#res.writableFinished) controller.abort(new Error('client closed the connection'));
    });
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number): void {
    if (statusCode < 200) return;
    this.#res.writeHead(statusCode, downstreamResponseHeaders((controller.rawHeaders ?? []) as Buffer[]));
    this.#res.on('drain', () => this.#controller?.resume());
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.#res.write(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    this.#res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    failUpstream(this.#res, error);
  }
}
