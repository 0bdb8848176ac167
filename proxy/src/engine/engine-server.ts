// The originator-facing listener on fhirmesh's own HTTP/1.1 core: per request, framing and
// target → routing metadata → table lookup → policy → exchange, every intermediary failure
// answered as an OperationOutcome naming this hop, in the order the requests arrived.

import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { TLSSocket } from 'node:tls';
import type { CompiledRoute } from '../../../api/index.ts';
import { DEFAULT_LIMITS, type ProxyLimits } from '../config/limits.ts';
import { isProxyError, PROXY_ERRORS, ProxyError, type ProxyErrorCode } from '../errors.ts';
import { upstreamRequestHeaders, viaContains } from '../forward/headers.ts';
import { classifyFhirRequest, type FhirRequestInfo, UNCLASSIFIED } from '../metadata/fhir-request.ts';
import { parseRequestTarget } from '../metadata/request-target.ts';
import { resolveDestination } from '../metadata/routing-metadata.ts';
import { chooseOutcomeFormat, formatParamOf, renderOutcome } from '../outcome/operation-outcome.ts';
import { parseErrorOutcome } from '../server/parse-errors.ts';
import { hasBody, requestFraming } from '../server/request-framing.ts';
import { selectBackend } from '../table/route-table.ts';
import type { TableHolder } from '../table/table-holder.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { RequestHandle, RequestTelemetry } from '../telemetry/request-telemetry.ts';
import { DownstreamConnection, type DownstreamRequest } from './downstream-connection.ts';
import { Exchange, type ExchangeResult } from './exchange.ts';
import { httpDate } from './http-date.ts';
import { requestHead } from './wire-format.ts';
import type { UpstreamPools } from './upstream-pool.ts';

export interface EngineServerOptions {
  intermediaryId: string;
  holder: TableHolder;
  pools: UpstreamPools;
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
  'FHIRMESH_EXPECTATION_FAILED',
]);
const RETRY_AFTER_SECONDS = new Map<ProxyErrorCode, string>([
  ['FHIRMESH_NOT_READY', '1'],
  ['FHIRMESH_OVERLOADED', '1'],
]);
const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request', 404: 'Not Found', 405: 'Method Not Allowed', 408: 'Request Timeout', 413: 'Payload Too Large',
  414: 'URI Too Long', 417: 'Expectation Failed', 431: 'Request Header Fields Too Large', 500: 'Internal Server Error',
  501: 'Not Implemented', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported', 508: 'Loop Detected',
};
const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';

/** What is known of a request by the time it fails, for its answer and its telemetry. */
interface RequestContext {
  destination: string;
  info: FhirRequestInfo;
  counted: string | undefined;
  /** Until the framing is known, what follows the head cannot be told from the next request. */
  bodyFollows: boolean;
  allow: string | undefined;
  telemetry: RequestHandle;
}

export class EngineServer {
  readonly server: net.Server;
  readonly #options: EngineServerOptions;
  readonly #limits: ProxyLimits;
  readonly #connections = new Set<DownstreamConnection>();
  readonly #inFlightByDestination = new Map<string, number>();
  readonly #sweep: NodeJS.Timeout;
  #inFlight = 0;
  #draining = false;
  #drained: (() => void) | undefined;

  constructor(options: EngineServerOptions, createServer: (listener: (socket: net.Socket) => void) => net.Server = plainServer) {
    this.#options = options;
    this.#limits = { ...DEFAULT_LIMITS, ...options.limits };
    const hooks = {
      maxHeaderBytes: this.#limits.maxHeaderBytes,
      onRequest: (request: DownstreamRequest) => this.#onRequest(request),
      renderParseFailure: (code: string, chunk: Buffer | undefined) => this.#renderParseFailure(code, chunk),
      http09Answer: () => this.#refusal('FHIRMESH_VERSION_NOT_SUPPORTED', 'HTTP/0.9 is not served here; send HTTP/1.1'),
    };
    this.server = createServer((socket) => {
      if (this.#draining) {
        socket.destroy();
        return;
      }
      const connection = new DownstreamConnection(socket, hooks, performance.now());
      this.#connections.add(connection);
      socket.once('close', () => this.#connections.delete(connection));
    });
    this.#sweep = setInterval(() => this.#sweepConnections(), Math.min(1_000, this.#limits.headersTimeoutMs));
    this.#sweep.unref();
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

  /** Stops accepting, lets requests in flight finish for up to `graceMs`, then cuts what is left. */
  async shutdown(graceMs: number): Promise<number> {
    this.#draining = true;
    clearInterval(this.#sweep);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const connection of this.#connections) connection.drain();
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
    for (const connection of this.#connections) connection.destroy();
    await closed;
    return cut;
  }

  #onRequest(request: DownstreamRequest): void {
    const { holder, pools } = this.#options;
    this.#inFlight++;
    const raw = request.head.rawHeaders;
    const telemetry = this.#options.telemetry.start({
      method: request.head.method,
      scheme: (request.connection.socket as TLSSocket).encrypted === true ? 'https' : 'http',
      // A repeated traceparent is invalid (W3C Trace Context 3.2): treated as absent.
      traceparent: singleHeader(raw, 'traceparent'),
      tracestate: joinedHeader(raw, 'tracestate'),
      header: (name) => joinedHeader(raw, name),
    });
    const ctx: RequestContext = { destination: 'unknown', info: UNCLASSIFIED, counted: undefined, bodyFollows: true, allow: undefined, telemetry };
    try {
      // The table is read once: a reload during this request does not change its route.
      const table = holder.current;
      const plan = this.#plan(request, ctx, table);
      const { route, backend, upstreamPath, framing, authority } = plan;
      const target = pools.target(backend);
      const head = request.head;

      const headers = upstreamRequestHeaders(head.rawHeaders, {
        intermediaryId: this.#options.intermediaryId,
        upstreamHost: target.hostHeader,
        nextHopDestination: backend.nextHopDestination,
        clientAddress: request.connection.socket.remoteAddress,
        originalHost: authority,
        protocol: (request.connection.socket as TLSSocket).encrypted === true ? 'https' : 'http',
        httpVersion: request.httpVersion,
        framing,
        // Tracing on: each attempt names its own client span as the parent (W3C: a tracing
        // intermediary replaces traceparent). Off: the originator's travels untouched.
        dropTraceContext: telemetry.replacesTraceContext,
      });
      const block = requestHead(head.method, upstreamPath, headers);
      if (plan.expectsContinue) request.connection.write(CONTINUE);
      const exchange = new Exchange({
        request,
        route,
        backend,
        target,
        pools,
        head: block,
        framing,
        telemetry,
        answerError: (error) => this.#answer(request, error, ctx),
        done: (result) => this.#finished(ctx, result),
      });
      exchange.start();
    } catch (err) {
      const error = isProxyError(err) ? err : new ProxyError('FHIRMESH_INTERNAL', 'the intermediary failed while handling the request', { cause: err });
      if (!isProxyError(err)) this.#options.logger.log('error', 'internal error', { error: String(err), destination: ctx.destination });
      const status = this.#answer(request, error, ctx);
      this.#finished(ctx, { status, origin: 'intermediary', errorCode: error.code, errorMessage: error.message, aborted: false, attempts: 0 });
    }
  }

  #plan(
    request: DownstreamRequest,
    ctx: RequestContext,
    table: TableHolder['current'],
  ): { route: CompiledRoute; backend: CompiledRoute['backend']; upstreamPath: string; framing: ReturnType<typeof requestFraming>; authority: string | undefined; expectsContinue: boolean } {
    const { intermediaryId, pools } = this.#options;
    const limits = this.#limits;
    const head = request.head;
    const method = head.method;
    if (head.versionMajor !== 1) {
      throw new ProxyError('FHIRMESH_VERSION_NOT_SUPPORTED', `HTTP/${request.httpVersion} is not served here; send HTTP/1.1`);
    }
    if (method === 'CONNECT') {
      throw new ProxyError('FHIRMESH_NOT_IMPLEMENTED', 'CONNECT (a tunnel) is not a FHIR interaction; send the request itself');
    }
    const raw = head.rawHeaders;
    if (raw.length > limits.maxHeaderCount * 2) {
      throw new ProxyError('FHIRMESH_HEADERS_TOO_LARGE', `the request has more than ${limits.maxHeaderCount} header fields`);
    }
    const framing = requestFraming(request.httpVersion, raw);
    ctx.bodyFollows = hasBody(framing);
    // One pass over the header list for what routing and policy read.
    const hosts: string[] = [];
    let destinationHeader: string | undefined;
    let via: string | undefined;
    let expect: string | undefined;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i] as string;
      switch (name.length) {
        case 4:
          if (name.toLowerCase() === 'host') hosts.push(raw[i + 1] as string);
          break;
        case 3:
          if (name.toLowerCase() === 'via') via = via === undefined ? (raw[i + 1]) : `${via}, ${raw[i + 1] as string}`;
          break;
        case 6:
          if (name.toLowerCase() === 'expect') expect = raw[i + 1];
          break;
        case 13:
          if (name.toLowerCase() === 'x-destination') {
            destinationHeader = destinationHeader === undefined ? (raw[i + 1]) : `${destinationHeader}, ${raw[i + 1] as string}`;
          }
          break;
      }
    }
    let expectsContinue = false;
    if (expect !== undefined) {
      if (expect.trim().toLowerCase() !== '100-continue') {
        throw new ProxyError('FHIRMESH_EXPECTATION_FAILED', 'this intermediary meets only `Expect: 100-continue`; remove the Expect header');
      }
      expectsContinue = head.versionMinor >= 1;
    }
    const target = parseRequestTarget(head.url, hosts, request.httpVersion, limits);
    if (!this.#options.holder.loaded) {
      throw new ProxyError('FHIRMESH_NOT_READY', 'this intermediary has no route table yet; retry shortly');
    }
    if (viaContains(via, intermediaryId)) {
      throw new ProxyError('FHIRMESH_LOOP_DETECTED', `the request has already passed through '${intermediaryId}' (Via); check the routes for a cycle`);
    }
    const resolved = resolveDestination(table, { target, destinationHeader });
    const route = resolved.route;
    ctx.destination = route.destinationId;
    ctx.info = classifyFhirRequest(method, resolved.segments);
    const { backend, rule } = selectBackend(route, method, ctx.info);
    // Known from here: the answers below (405, 413, 503) are labelled with the destination and rule.
    ctx.telemetry.routed({
      destination: route.destinationId,
      interaction: ctx.info.interaction,
      resourceType: ctx.info.resourceType,
      routeTemplate: ctx.info.routeTemplate,
      rule: rule?.name,
      backendUrl: pools.target(backend).url,
    });
    if (!(route.allowedMethods as readonly string[]).includes(method)) {
      ctx.allow = route.allowedMethods.join(', ');
      throw new ProxyError('FHIRMESH_METHOD_NOT_ALLOWED', `${method} is not allowed for destination ${ctx.destination}; allowed: ${ctx.allow}`);
    }
    if (framing.kind === 'length' && framing.length > route.maxRequestBodyBytes) {
      throw new ProxyError('FHIRMESH_BODY_TOO_LARGE', `the request body (${framing.length} bytes) is larger than destination ${ctx.destination} allows (${route.maxRequestBodyBytes} bytes)`);
    }
    const inFlightHere = this.#inFlightByDestination.get(ctx.destination) ?? 0;
    if (inFlightHere >= limits.maxConcurrentPerDestination) {
      throw new ProxyError('FHIRMESH_OVERLOADED', `destination ${ctx.destination} already has ${inFlightHere} requests in flight through this intermediary; retry shortly`);
    }
    this.#inFlightByDestination.set(ctx.destination, inFlightHere + 1);
    ctx.counted = ctx.destination;
    const basePath = pools.target(backend).basePath;
    const upstreamPath = (basePath + resolved.path || '/') + (resolved.query === '' ? '' : `?${resolved.query}`);
    return { route, backend, upstreamPath, framing, authority: target.authority, expectsContinue };
  }

  /** Writes the OperationOutcome for an intermediary error; returns the status sent. */
  #answer(request: DownstreamRequest, error: ProxyError, ctx: RequestContext): number {
    const { status } = PROXY_ERRORS[error.code];
    if (request.headSent) {
      request.abort();
      return status;
    }
    const url = request.head.url;
    const queryAt = url.indexOf('?');
    let accept: string | undefined;
    const raw = request.head.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).length === 6 && (raw[i] as string).toLowerCase() === 'accept') accept = raw[i + 1];
    const format = chooseOutcomeFormat(formatParamOf(queryAt < 0 ? '' : url.slice(queryAt + 1)), accept);
    const outcome = renderOutcome(error.code, error.message, this.#options.intermediaryId, format);
    // A body we did not read must not be mistaken for the next request on this connection.
    if ((ctx.bodyFollows && !request.bodyComplete) || CLOSES_CONNECTION.has(error.code)) request.closeAfter = true;
    let block = `Content-Type: ${outcome.contentType}\r\nFhirmesh-Intermediary: ${this.#options.intermediaryId}\r\nFhirmesh-Error: ${error.code}\r\nDate: ${httpDate()}\r\n`;
    if (ctx.allow !== undefined && error.code === 'FHIRMESH_METHOD_NOT_ALLOWED') block += `Allow: ${ctx.allow}\r\n`;
    const retryAfter = RETRY_AFTER_SECONDS.get(error.code);
    if (retryAfter !== undefined) block += `Retry-After: ${retryAfter}\r\n`;
    if (request.head.method === 'HEAD') {
      request.writeHead(outcome.status, STATUS_TEXT[outcome.status] ?? 'Error', `${block}Content-Length: ${outcome.body.length}\r\n`, 'none');
    } else {
      request.writeHead(outcome.status, STATUS_TEXT[outcome.status] ?? 'Error', block, 'length', outcome.body.length);
      request.writeBody(outcome.body);
    }
    request.end();
    return outcome.status;
  }

  #finished(ctx: RequestContext, result: ExchangeResult): void {
    this.#inFlight--;
    if (ctx.counted !== undefined) {
      const left = (this.#inFlightByDestination.get(ctx.counted) ?? 1) - 1;
      if (left === 0) this.#inFlightByDestination.delete(ctx.counted);
      else this.#inFlightByDestination.set(ctx.counted, left);
    }
    ctx.telemetry.finished({
      status: result.status,
      origin: result.origin,
      errorCode: result.errorCode,
      ...(result.errorMessage !== undefined ? { errorMessage: result.errorMessage } : {}),
      aborted: result.aborted,
    });
    if (this.#draining && this.#inFlight === 0) this.#drained?.();
  }

  #renderParseFailure(code: string, chunk: Buffer | undefined): { head: string; body: Buffer } | undefined {
    const outcome = parseErrorOutcome(Object.assign(new Error(code), { code, ...(chunk !== undefined ? { rawPacket: chunk } : {}) }), this.#limits);
    if (outcome === undefined) return undefined;
    this.#options.telemetry.unparsed(outcome.status, outcome.code);
    return this.#refusal(outcome.code, outcome.message);
  }

  /** A whole response with no request object behind it (parse failures, timeouts), then close. */
  #refusal(code: ProxyErrorCode, message: string): { head: string; body: Buffer } {
    const outcome = renderOutcome(code, message, this.#options.intermediaryId, 'json');
    const head =
      `HTTP/1.1 ${outcome.status} ${STATUS_TEXT[outcome.status] ?? 'Error'}\r\n` +
      `Content-Type: ${outcome.contentType}\r\nContent-Length: ${outcome.body.length}\r\n` +
      `Fhirmesh-Intermediary: ${this.#options.intermediaryId}\r\nFhirmesh-Error: ${code}\r\nDate: ${httpDate()}\r\nConnection: close\r\n\r\n`;
    return { head, body: outcome.body };
  }

  /** Headers timeout (slow-header clients get 408) and keep-alive timeout, for every connection at once. */
  #sweepConnections(): void {
    const now = performance.now();
    const { headersTimeoutMs, keepAliveTimeoutMs } = this.#limits;
    for (const connection of this.#connections) {
      if (connection.headStartedAt > 0 && now - connection.headStartedAt > headersTimeoutMs) {
        connection.refuse(this.#refusal('FHIRMESH_CLIENT_TIMEOUT', `the request head did not arrive within ${headersTimeoutMs / 1000} s`));
      } else if (!connection.busy && connection.idleSince > 0 && now - connection.idleSince > keepAliveTimeoutMs) {
        connection.destroy();
      }
    }
  }
}

/** The one value of a header sent exactly once; undefined when absent or repeated. */
function singleHeader(raw: readonly string[], lower: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length !== lower.length || name.toLowerCase() !== lower) continue;
    if (value !== undefined) return undefined;
    value = raw[i + 1];
  }
  return value;
}

/** Every value of a header, joined by `, ` as a repeated list header reads; undefined when absent. */
function joinedHeader(raw: readonly string[], lower: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length !== lower.length || name.toLowerCase() !== lower) continue;
    value = value === undefined ? (raw[i + 1]) : `${value}, ${raw[i + 1] as string}`;
  }
  return value;
}

function plainServer(listener: (socket: net.Socket) => void): net.Server {
  // Half-open: an originator's FIN mid-message is still answered (400) before the close.
  return net.createServer({ allowHalfOpen: true, noDelay: true }, listener);
}
