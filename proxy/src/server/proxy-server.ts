// The originator-facing listener: for each request, framing and target → routing metadata →
// table lookup → policy → forward, with every intermediary failure answered as an
// OperationOutcome naming this hop, in the order the requests arrived.

import { http } from '../internal/builtins.ts';
import type * as Http from 'node:http';
import type { Socket } from 'node:net';
import { DEFAULT_LIMITS, type ProxyLimits } from '../config/limits.ts';
import { isProxyError, ProxyError, type ProxyErrorCode } from '../errors.ts';
import { type Forwarder, ResponseAbortedError } from '../forward/forwarder.ts';
import { viaContains } from '../forward/headers.ts';
import { classifyFhirRequest } from '../metadata/fhir-request.ts';
import { parseRequestTarget } from '../metadata/request-target.ts';
import { resolveDestination } from '../metadata/routing-metadata.ts';
import { chooseOutcomeFormat, formatParamOf, type RenderedOutcome, renderOutcome } from '../outcome/operation-outcome.ts';
import { selectBackend } from '../table/route-table.ts';
import type { TableHolder } from '../table/table-holder.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { RequestTelemetry } from '../telemetry/request-telemetry.ts';
import { parseErrorOutcome } from './parse-errors.ts';
import { BODY_FRAMING_FAILED, hasBody, requestFraming } from './request-framing.ts';

export interface ProxyServerOptions {
  intermediaryId: string;
  holder: TableHolder;
  forwarder: Forwarder;
  logger: Logger;
  /** Metrics, access line, spans and trace context of each request (telemetry/request-telemetry.ts). */
  telemetry: RequestTelemetry;
  limits?: Partial<ProxyLimits>;
}

/** Errors after which the rest of the connection cannot be read safely: answer, then close. */
const CLOSES_CONNECTION = new Set<ProxyErrorCode>([
  'FHIRMESH_REQUEST_MALFORMED',
  'FHIRMESH_NOT_IMPLEMENTED',
  'FHIRMESH_VERSION_NOT_SUPPORTED',
  'FHIRMESH_HEADERS_TOO_LARGE',
  'FHIRMESH_URI_TOO_LONG',
  'FHIRMESH_CLIENT_TIMEOUT',
]);
const RETRY_AFTER_SECONDS = new Map<ProxyErrorCode, string>([
  ['FHIRMESH_NOT_READY', '1'],
  ['FHIRMESH_OVERLOADED', '1'],
]);

/**
 * Per connection: responses not yet finished, and a parse-error answer waiting for them. A
 * pipelined request that fails to parse is answered after every request before it, never in
 * the middle of one of their responses.
 */
interface ConnectionState {
  pending: number;
  /** The request most recently parsed: a parse error while its body streams is its own error. */
  latest: Http.IncomingMessage | undefined;
  parseFailed: boolean;
  deferredAnswer: (() => void) | undefined;
}
const connections = new WeakMap<Socket, ConnectionState>();

function connectionState(socket: Socket): ConnectionState {
  let state = connections.get(socket);
  if (state === undefined) {
    state = { pending: 0, latest: undefined, parseFailed: false, deferredAnswer: undefined };
    connections.set(socket, state);
  }
  return state;
}

export class ProxyServer {
  readonly server: Http.Server;
  readonly #options: ProxyServerOptions;
  readonly #limits: ProxyLimits;
  readonly #inFlightByDestination = new Map<string, number>();
  #inFlight = 0;
  #draining = false;
  #drained: (() => void) | undefined;

  constructor(options: ProxyServerOptions) {
    this.#options = options;
    this.#limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.server = http.createServer(
      {
        requestTimeout: 0,
        headersTimeout: this.#limits.headersTimeoutMs,
        keepAliveTimeout: this.#limits.keepAliveTimeoutMs,
        maxHeaderSize: this.#limits.maxHeaderBytes,
        // How often Node looks for connections past headersTimeout (its default is 30 s).
        connectionsCheckingInterval: Math.min(1_000, this.#limits.headersTimeoutMs),
        // A missing Host is answered by parseRequestTarget, with an OperationOutcome.
        requireHostHeader: false,
      },
      (req, res) => {
        const state = connectionState(req.socket);
        state.pending++;
        state.latest = req;
        res.once('close', () => {
          state.pending--;
          if (state.pending === 0) state.deferredAnswer?.();
        });
        void this.#handle(req, res);
      },
    );
    // Node drops header fields past maxHeadersCount silently, which would forward a different
    // request; count them all here and refuse past the limit instead.
    this.server.maxHeadersCount = 0;
    this.server.on('clientError', (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket) => this.#onClientError(err, socket));
    // Expect other than 100-continue (RFC 9110 10.1.1): refused with an OperationOutcome, not Node's bare 417.
    this.server.on('checkExpectation', (req: Http.IncomingMessage, res: Http.ServerResponse) => {
      this.#answer(req, res, new ProxyError('FHIRMESH_EXPECTATION_FAILED', 'this intermediary meets only `Expect: 100-continue`; remove the Expect header'), true);
    });
    // CONNECT asks for a tunnel, which an intermediary of FHIR REST interactions never opens.
    this.server.on('connect', (_req: Http.IncomingMessage, socket: Socket) => {
      this.#writeRaw(socket, this.#render('FHIRMESH_NOT_IMPLEMENTED', 'CONNECT (a tunnel) is not a FHIR interaction; send the request itself'));
    });
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get draining(): boolean {
    return this.#draining;
  }

  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const address = this.server.address();
        if (address === null || typeof address === 'string') reject(new Error('listener has no TCP address'));
        else resolve({ host: address.address, port: address.port });
      });
    });
  }

  /**
   * Stops accepting, lets requests in flight finish for up to `graceMs`, then cuts what is left.
   * Resolves with the number of requests that had to be cut.
   */
  async shutdown(graceMs: number): Promise<number> {
    this.#draining = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    if (this.#inFlight > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => {
          this.#drained = resolve;
        }),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, graceMs);
        }),
      ]);
      clearTimeout(timer);
    }
    const cut = this.#inFlight;
    this.server.closeAllConnections();
    await closed;
    return cut;
  }

  async #handle(req: Http.IncomingMessage, res: Http.ServerResponse): Promise<void> {
    const { holder, forwarder, intermediaryId } = this.#options;
    const limits = this.#limits;
    this.#inFlight++;
    const method = req.method ?? 'GET';
    const headers = req.headers;
    const telemetry = this.#options.telemetry.start({
      method,
      scheme: 'encrypted' in req.socket ? 'https' : 'http',
      // A repeated traceparent is invalid (W3C Trace Context 3.2): treated as absent.
      traceparent: singleValue(headers.traceparent),
      tracestate: headerValue(headers.tracestate),
      header: (name) => headerValue(headers[name]),
    });
    // The table is read once: a reload during this request does not change its route.
    const table = holder.current;
    let counted: string | undefined;
    let status = 500;
    let origin: 'intermediary' | 'destination' = 'intermediary';
    let errorCode: ProxyErrorCode | undefined;
    let errorMessage: string | undefined;
    let aborted = false;
    // Until the framing is known, what follows the head cannot be told from the next request.
    let bodyFollows = true;
    try {
      if (this.#draining && !res.headersSent) res.setHeader('Connection', 'close');
      if (req.httpVersionMajor !== 1) {
        throw new ProxyError('FHIRMESH_VERSION_NOT_SUPPORTED', `HTTP/${req.httpVersion} is not served here; send HTTP/1.1`);
      }
      if (req.rawHeaders.length > limits.maxHeaderCount * 2) {
        throw new ProxyError('FHIRMESH_HEADERS_TOO_LARGE', `the request has more than ${limits.maxHeaderCount} header fields`);
      }
      const framing = requestFraming(req.httpVersion, req.rawHeaders);
      bodyFollows = hasBody(framing);
      const target = parseRequestTarget(req.url ?? '/', hostValues(req.rawHeaders), req.httpVersion, limits);
      if (!holder.loaded) throw new ProxyError('FHIRMESH_NOT_READY', 'this intermediary has no route table yet; retry shortly');
      if (viaContains(headerValue(headers.via), intermediaryId)) {
        throw new ProxyError('FHIRMESH_LOOP_DETECTED', `the request has already passed through '${intermediaryId}' (Via); check the routes for a cycle`);
      }
      const resolved = resolveDestination(table, { target, destinationHeader: headerValue(headers['x-destination']) });
      const route = resolved.route;
      const destination = route.destinationId;
      const request = classifyFhirRequest(method, resolved.segments);
      const { backend, rule } = selectBackend(route, method, request);
      telemetry.routed({
        destination,
        interaction: request.interaction,
        resourceType: request.resourceType,
        routeTemplate: request.routeTemplate,
        rule: rule?.name,
        backendUrl: forwarder.backendUrl(backend),
      });
      if (!(route.allowedMethods as readonly string[]).includes(method)) {
        res.setHeader('Allow', route.allowedMethods.join(', '));
        throw new ProxyError('FHIRMESH_METHOD_NOT_ALLOWED', `${method} is not allowed for destination ${destination}; allowed: ${route.allowedMethods.join(', ')}`);
      }
      if (framing.kind === 'length' && framing.length > route.maxRequestBodyBytes) {
        throw new ProxyError('FHIRMESH_BODY_TOO_LARGE', `the request body (${framing.length} bytes) is larger than destination ${destination} allows (${route.maxRequestBodyBytes} bytes)`);
      }
      const inFlightHere = this.#inFlightByDestination.get(destination) ?? 0;
      if (inFlightHere >= limits.maxConcurrentPerDestination) {
        throw new ProxyError('FHIRMESH_OVERLOADED', `destination ${destination} already has ${inFlightHere} requests in flight through this intermediary; retry shortly`);
      }
      this.#inFlightByDestination.set(destination, inFlightHere + 1);
      counted = destination;
      const result = await forwarder.forward({
        req,
        res,
        route,
        backend,
        path: resolved.path,
        query: resolved.query,
        protocol: 'encrypted' in req.socket ? 'https' : 'http',
        authority: target.authority,
        framing,
        telemetry,
      });
      status = result.status;
      // A later hop's own error answer, passed through unchanged: the intermediaries', not the destination's.
      origin = result.intermediaryError === undefined ? 'destination' : 'intermediary';
      errorCode = result.intermediaryError;
    } catch (err) {
      if (err instanceof ResponseAbortedError) {
        status = err.status;
        origin = 'destination';
        aborted = true;
      } else {
        const proxyError = isProxyError(err) ? err : new ProxyError('FHIRMESH_INTERNAL', 'the intermediary failed while handling the request', { cause: err });
        if (!isProxyError(err)) this.#options.logger.log('error', 'internal error', { error: String(err) });
        errorCode = proxyError.code;
        errorMessage = proxyError.message;
        status = this.#answer(req, res, proxyError, bodyFollows && !req.complete);
      }
    } finally {
      this.#inFlight--;
      if (counted !== undefined) {
        const left = (this.#inFlightByDestination.get(counted) ?? 1) - 1;
        if (left === 0) this.#inFlightByDestination.delete(counted);
        else this.#inFlightByDestination.set(counted, left);
      }
      telemetry.finished({ status, origin, errorCode, ...(errorMessage !== undefined ? { errorMessage } : {}), aborted });
      if (this.#draining && this.#inFlight === 0) this.#drained?.();
    }
  }

  /** Writes the OperationOutcome for an intermediary error; returns the status sent. */
  #answer(req: Http.IncomingMessage, res: Http.ServerResponse, error: ProxyError, bodyUnread: boolean): number {
    const rawUrl = req.url ?? '';
    const queryAt = rawUrl.indexOf('?');
    const format = chooseOutcomeFormat(formatParamOf(queryAt < 0 ? '' : rawUrl.slice(queryAt + 1)), req.headers.accept);
    const outcome = renderOutcome(error.code, error.message, this.#options.intermediaryId, format);
    if (res.headersSent) {
      res.destroy();
      return outcome.status;
    }
    // A body we did not read must not be mistaken for the next request on this connection.
    if (bodyUnread || CLOSES_CONNECTION.has(error.code)) res.setHeader('Connection', 'close');
    const retryAfter = RETRY_AFTER_SECONDS.get(error.code);
    if (retryAfter !== undefined) res.setHeader('Retry-After', retryAfter);
    res.setHeader('Content-Type', outcome.contentType);
    res.setHeader('Content-Length', outcome.body.length);
    res.setHeader('Fhirmesh-Intermediary', this.#options.intermediaryId);
    res.setHeader('Fhirmesh-Error', error.code);
    res.writeHead(outcome.status);
    res.end(outcome.body);
    if (CLOSES_CONNECTION.has(error.code)) req.socket.pause();
    return outcome.status;
  }

  /**
   * A request the HTTP parser refused. Nothing after it on this connection can be trusted, so it
   * is answered (after every earlier response) and the connection closed.
   */
  #onClientError(err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket): void {
    const state = connectionState(socket);
    if (state.parseFailed) return;
    state.parseFailed = true;
    const outcome = parseErrorOutcome(err, this.#limits);
    if (outcome === undefined || !socket.writable) {
      socket.destroy();
      return;
    }
    this.#options.telemetry.unparsed(outcome.status, outcome.code);
    // Nothing more is read: what follows a parse error is not a request.
    socket.pause();
    const latest = state.latest;
    if (latest !== undefined && !latest.complete && outcome.code === 'FHIRMESH_REQUEST_MALFORMED') {
      // The error is inside the body of a request being forwarded: that request fails with it
      // (its upstream attempt is cut, never ended as if whole) and answers for it, then closes.
      // (Destroying the request would destroy the socket and lose the answer.)
      const failure = new ProxyError('FHIRMESH_REQUEST_MALFORMED', `the request body is not valid HTTP/1.1 framing (${err.code ?? 'parse error'}); nothing was delivered`);
      if (latest.emit(BODY_FRAMING_FAILED, failure)) return;
    }
    if (latest !== undefined && !latest.complete) {
      // Not being forwarded (yet): nobody will answer it, so the connection is closed.
      socket.destroy();
      return;
    }
    const rendered = this.#render(outcome.code, outcome.message);
    if (state.pending === 0) this.#writeRaw(socket, rendered);
    else state.deferredAnswer = () => this.#writeRaw(socket, rendered);
  }

  #render(code: ProxyErrorCode, message: string): RenderedOutcome & { code: ProxyErrorCode } {
    return { ...renderOutcome(code, message, this.#options.intermediaryId, 'json'), code };
  }

  /** A whole response written straight to the socket (no request object exists), then close. */
  #writeRaw(socket: Socket, outcome: RenderedOutcome & { code: ProxyErrorCode }): void {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const head =
      `HTTP/1.1 ${outcome.status} ${http.STATUS_CODES[outcome.status] ?? 'Error'}\r\n` +
      `Content-Type: ${outcome.contentType}\r\n` +
      `Content-Length: ${outcome.body.length}\r\n` +
      `Fhirmesh-Intermediary: ${this.#options.intermediaryId}\r\n` +
      `Fhirmesh-Error: ${outcome.code}\r\n` +
      'Connection: close\r\n\r\n';
    socket.end(Buffer.concat([Buffer.from(head, 'latin1'), outcome.body]));
    // A client that never reads must not keep the socket open.
    socket.setTimeout(5_000, () => socket.destroy());
  }
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

function singleValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? undefined : value;
}

/** Every Host field as sent: the parsed headers keep only the first of a duplicated Host. */
function hostValues(rawHeaders: readonly string[]): string[] {
  const values: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    if (name.length === 4 && name.toLowerCase() === 'host') values.push(rawHeaders[i + 1] as string);
  }
  return values;
}
