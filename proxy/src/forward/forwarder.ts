// Sends one originator request to its backend and relays the answer: streamed both ways, pooled
// connections, the route's timeouts and retries, and the IG's status codes for upstream failures.

import { http, https } from '../internal/builtins.ts';
import type * as Http from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import type { CompiledBackend, CompiledRoute, RetryOn } from '../../../api/index.ts';
import { isProxyError, PROXY_ERRORS, ProxyError, type ProxyErrorCode } from '../errors.ts';
import { BODY_FRAMING_FAILED, type BodyFraming, hasBody } from '../server/request-framing.ts';
import type { AttemptHandle, RequestHandle, RetryReason } from '../telemetry/request-telemetry.ts';
import { downstreamResponseHeaders, upstreamRequestHeaders } from './headers.ts';
import type { UpstreamPool } from './upstream-pool.ts';
import { isRewritableBody, rewriteUrlPrefix, StreamingReplace, URL_HEADERS } from './url-rewriter.ts';

export interface ForwardRequest {
  req: Http.IncomingMessage;
  res: Http.ServerResponse;
  route: CompiledRoute;
  backend: CompiledBackend;
  /** Path after the destination base (`/Patient/1`) and raw query without `?`. */
  path: string;
  query: string;
  protocol: 'http' | 'https';
  /** The authority the originator addressed (server/request-target.ts), for Forwarded `host=`. */
  authority: string | undefined;
  /** How the request body arrived (server/request-framing.ts): the next hop gets the same framing. */
  framing: BodyFraming;
  /** This request's telemetry: told of each attempt, and gives the trace context each one sends. */
  telemetry: RequestHandle;
}

export interface ForwardResult {
  status: number;
  attempts: number;
  /**
   * The answer is an error a later intermediary made itself (its `Fhirmesh-Error` header names a
   * known code), not the destination's: telemetry counts it as the intermediaries', passed through.
   */
  intermediaryError: ProxyErrorCode | undefined;
}

/** Thrown once the response has started: the only honest signal left is to cut the connection. */
export class ResponseAbortedError extends Error {
  readonly status: number;
  constructor(status: number, cause: unknown) {
    super('the exchange failed after the response had started', { cause });
    this.status = status;
  }
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);
const RETRYABLE_STATUS = new Map<number, RetryOn>([
  [502, 'bad-gateway'],
  [503, 'unavailable'],
  [504, 'gateway-timeout'],
]);
const RETRY_BACKOFF_MS = 25;

export class Forwarder {
  readonly #pool: UpstreamPool;
  readonly #intermediaryId: string;

  constructor(pool: UpstreamPool, intermediaryId: string) {
    this.#pool = pool;
    this.#intermediaryId = intermediaryId;
  }

  /** The backend's parsed base URL (cached per compiled backend), for telemetry. */
  backendUrl(backend: CompiledBackend): URL {
    return this.#pool.parse(backend).url;
  }

  async forward(request: ForwardRequest): Promise<ForwardResult> {
    const { req, route, backend, telemetry } = request;
    const parsed = this.#pool.parse(backend);
    const upstreamPath =
      (parsed.basePath + request.path || '/') + (request.query === '' ? '' : `?${request.query}`);
    // Tracing on: each attempt names its own client span as the parent (W3C: a tracing intermediary
    // replaces traceparent), appended per attempt below. Off: the originator's travels untouched.
    const headers = upstreamRequestHeaders(req.rawHeaders, {
      intermediaryId: this.#intermediaryId,
      upstreamHost: parsed.hostHeader,
      nextHopDestination: backend.nextHopDestination,
      clientAddress: req.socket.remoteAddress,
      originalHost: request.authority,
      protocol: request.protocol,
      httpVersion: req.httpVersion,
      framing: request.framing,
      dropTraceContext: telemetry.replacesTraceContext,
    });
    const endToEndLength = headers.length;
    const withBody = hasBody(request.framing);
    // Bodies are streamed, never kept, so only a request without one can be sent twice.
    const replayable = !withBody && IDEMPOTENT.has(req.method ?? '');
    const maxAttempts = replayable ? 1 + route.retryAttempts : 1;

    let staleSocketRetried = false;
    let retryReason: RetryReason | undefined;
    for (let attempt = 1; ; attempt++) {
      const lease = this.#pool.acquire(backend, parsed);
      const events = telemetry.attemptStarted({ retryReason });
      // Node copies the list when the request is made, so one array serves every attempt.
      headers.length = endToEndLength;
      for (const field of events.upstreamHeaders()) headers.push(field);
      let exchange: Exchange;
      try {
        exchange = await sendOnce({
          transport: parsed.isTls ? https : http,
          agent: lease.agent,
          url: parsed.url,
          method: req.method ?? 'GET',
          path: upstreamPath,
          headers,
          body: withBody ? req : undefined,
          chunked: request.framing.kind === 'chunked',
          maxBodyBytes: route.maxRequestBodyBytes,
          connectTimeoutMs: route.connectTimeoutMs,
          firstByteTimeoutMs: route.firstByteTimeoutMs,
          idleTimeoutMs: route.idleTimeoutMs,
          // A retry can start after the originator has gone; 'close' will not fire a second time.
          onClientGone: (fn) => (request.res.destroyed ? fn() : request.res.once('close', fn)),
          events,
        });
      } catch (err) {
        lease.release();
        if (!(err instanceof UpstreamFailure)) {
          events.finished({ errorCode: isProxyError(err) ? err.code : 'FHIRMESH_INTERNAL' });
          throw err;
        }
        const failure = err;
        // Nobody is waiting for another attempt.
        if (request.res.destroyed) {
          events.finished({ errorCode: failure.code });
          throw new ProxyError(failure.code, failure.message, { cause: failure.cause });
        }
        // A pooled socket the server had just closed is not a failure of the backend (Node docs:
        // Http.ClientRequest reusedSocket): try once more when that is safe (the pool hands out
        // its most recently used socket first, which the server has not had time to close).
        if (failure.reusedSocket && failure.code === 'FHIRMESH_UPSTREAM_RESET' && replayable && !staleSocketRetried) {
          staleSocketRetried = true;
          retryReason = 'stale-socket';
          events.finished({ errorCode: failure.code, retryReason });
          attempt--;
          continue;
        }
        if (attempt < maxAttempts && retryableFailure(route, failure)) {
          retryReason = failure.phase === 'connect' ? 'connect-failure' : 'reset';
          events.finished({ errorCode: failure.code, retryReason });
          await delay(RETRY_BACKOFF_MS * 2 ** (attempt - 1));
          continue;
        }
        events.finished({ errorCode: failure.code });
        throw new ProxyError(failure.code, failure.message, { cause: failure.cause });
      }
      const status = exchange.response.statusCode ?? 502;
      const statusCondition = RETRYABLE_STATUS.get(status);
      if (attempt < maxAttempts && statusCondition !== undefined && route.retryOn.includes(statusCondition)) {
        exchange.response.resume();
        exchange.response.once('end', lease.release);
        exchange.response.once('error', lease.release);
        retryReason = statusCondition;
        events.finished({ status, retryReason });
        await delay(RETRY_BACKOFF_MS * 2 ** (attempt - 1));
        continue;
      }
      try {
        await relay(exchange, request, backend);
        events.finished({ status });
      } catch (err) {
        events.finished({ status, aborted: true });
        throw err;
      } finally {
        lease.release();
      }
      return { status, attempts: attempt, intermediaryError: laterIntermediaryError(exchange.response.headers['fhirmesh-error']) };
    }
  }
}

function laterIntermediaryError(value: string | string[] | undefined): ProxyErrorCode | undefined {
  return typeof value === 'string' && Object.hasOwn(PROXY_ERRORS, value) ? (value as ProxyErrorCode) : undefined;
}

function retryableFailure(route: CompiledRoute, failure: UpstreamFailure): boolean {
  if (failure.phase === 'connect') return route.retryOn.includes('connect-failure');
  if (failure.code === 'FHIRMESH_UPSTREAM_RESET') return route.retryOn.includes('reset');
  return false;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------------------------

interface SendOptions {
  transport: typeof http | typeof https;
  agent: Http.Agent;
  url: URL;
  method: string;
  path: string;
  headers: string[];
  body: Http.IncomingMessage | undefined;
  /** Chunked bodies have no declared length, so they are counted against the limit as they pass. */
  chunked: boolean;
  maxBodyBytes: number;
  connectTimeoutMs: number;
  firstByteTimeoutMs: number;
  idleTimeoutMs: number;
  onClientGone: (fn: () => void) => void;
  /** Told when a new connection is up and when the response head arrives. */
  events: AttemptHandle;
}

interface Exchange {
  upstream: Http.ClientRequest;
  response: Http.IncomingMessage;
}

class UpstreamFailure extends Error {
  readonly code: ProxyErrorCode;
  readonly phase: 'connect' | 'request';
  readonly reusedSocket: boolean;
  constructor(code: ProxyErrorCode, message: string, phase: 'connect' | 'request', reusedSocket: boolean, cause: unknown) {
    super(message, { cause });
    this.code = code;
    this.phase = phase;
    this.reusedSocket = reusedSocket;
  }
}

/** Declared on the request body limiter so the caller can tell 413 from an upstream failure. */
class BodyTooLargeError extends Error {
  constructor(limit: number) {
    super(`the request body is larger than this route allows (${limit} bytes); send a smaller body`);
  }
}

class BodyLimiter extends Transform {
  #seen = 0;
  readonly #limit: number;
  constructor(limit: number) {
    super();
    this.#limit = limit;
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#seen > this.#limit) callback(new BodyTooLargeError(this.#limit));
    else callback(null, chunk);
  }
}

function sendOnce(options: SendOptions): Promise<Exchange> {
  return new Promise<Exchange>((resolve, reject) => {
    let phase: 'connect' | 'request' = 'connect';
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const upstream = options.transport.request({
      agent: options.agent,
      hostname: options.url.hostname.startsWith('[') ? options.url.hostname.slice(1, -1) : options.url.hostname,
      port: options.url.port === '' ? undefined : Number(options.url.port),
      method: options.method,
      path: options.path,
      headers: options.headers,
      setHost: false,
    });
    // Node drops response header fields past 2000 silently; the head's size (16 KiB) is the limit.
    upstream.maxHeadersCount = 0;

    const fail = (code: ProxyErrorCode, message: string, cause: unknown): void => {
      if (timer !== undefined) clearTimeout(timer);
      if (settled) return;
      settled = true;
      upstream.destroy();
      reject(new UpstreamFailure(code, message, phase, upstream.reusedSocket, cause));
    };
    const arm = (ms: number, onFire: () => void): void => {
      if (timer !== undefined) clearTimeout(timer);
      timer = setTimeout(onFire, ms);
    };

    // Three clocks: connect (new sockets only), silence while the body goes up, then the wait
    // for the first response byte, which starts once the body is sent and the socket is up.
    let connected = false;
    let bodySent = false;
    const armFirstByte = (): void => {
      if (!connected || !bodySent || settled) return;
      arm(options.firstByteTimeoutMs, () =>
        fail('FHIRMESH_UPSTREAM_TIMEOUT', `the next hop sent no response within ${options.firstByteTimeoutMs} ms`, undefined),
      );
    };
    upstream.on('socket', (socket) => {
      if (!socket.connecting) {
        phase = 'request';
        connected = true;
        armFirstByte();
        return;
      }
      arm(options.connectTimeoutMs, () =>
        fail('FHIRMESH_UPSTREAM_TIMEOUT', `no connection to the next hop within ${options.connectTimeoutMs} ms`, undefined),
      );
      socket.once(options.transport === https ? 'secureConnect' : 'connect', () => {
        phase = 'request';
        connected = true;
        options.events.upstreamConnected();
        if (timer !== undefined) clearTimeout(timer);
        timer = undefined;
        armFirstByte();
      });
    });
    upstream.setTimeout(options.idleTimeoutMs, () => {
      if (settled) return;
      // Mid-upload, silence is the originator's unless the next hop stopped reading (backpressure).
      const body = options.body;
      if (body !== undefined && !body.complete && !upstream.writableNeedDrain) {
        fail('FHIRMESH_CLIENT_TIMEOUT', `the originator sent no more of its request body for ${options.idleTimeoutMs} ms`, undefined);
        return;
      }
      fail('FHIRMESH_UPSTREAM_TIMEOUT', `the next hop was silent for ${options.idleTimeoutMs} ms`, undefined);
    });
    upstream.on('finish', () => {
      bodySent = true;
      upstream.setTimeout(0);
      armFirstByte();
    });
    upstream.on('response', (response) => {
      if (timer !== undefined) clearTimeout(timer);
      if (settled) {
        response.resume();
        return;
      }
      if (response.httpVersionMajor !== 1) {
        fail('FHIRMESH_UPSTREAM_BAD_RESPONSE', `the next hop answered HTTP/${response.httpVersion} on an HTTP/1.1 connection`, undefined);
        return;
      }
      const transferEncoding = response.headers['transfer-encoding'];
      if (transferEncoding !== undefined) {
        // RFC 9112 6.1: Transfer-Encoding on HTTP/1.0 means the framing cannot be trusted.
        if (response.httpVersion === '1.0') {
          fail('FHIRMESH_UPSTREAM_BAD_RESPONSE', 'the next hop answered HTTP/1.0 with Transfer-Encoding, whose framing cannot be trusted', undefined);
          return;
        }
        // Transfer codings are per hop and only chunked is undone here: relaying gzip-coded bytes
        // as if they were the body would hand the originator something else.
        if (transferEncoding.trim().toLowerCase() !== 'chunked') {
          fail('FHIRMESH_UPSTREAM_BAD_RESPONSE', 'the next hop used a transfer coding other than chunked, which this intermediary does not decode', undefined);
          return;
        }
      }
      settled = true;
      options.events.firstByte(response.statusCode ?? 502);
      resolve({ upstream, response });
    });
    // A 101 nobody asked for (fhirmesh never forwards Upgrade): the socket now speaks something else.
    upstream.on('upgrade', (_response, socket) => {
      socket.destroy();
      fail('FHIRMESH_UPSTREAM_BAD_RESPONSE', 'the next hop switched protocols (101) although no upgrade was asked for', undefined);
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      // The originator's body failed to parse (server/proxy-server.ts): its own error, not the next hop's.
      if (isProxyError(err)) {
        fail(err.code, err.message, err);
        return;
      }
      if (err instanceof BodyTooLargeError) {
        if (timer !== undefined) clearTimeout(timer);
        if (!settled) {
          settled = true;
          reject(new UpstreamFailure('FHIRMESH_BODY_TOO_LARGE', err.message, phase, false, err));
        }
        return;
      }
      const [code, message] = classifySocketError(err, phase);
      fail(code, message, err);
    });
    options.onClientGone(() => {
      if (!settled) fail('FHIRMESH_UPSTREAM_RESET', 'the originator went away', undefined);
    });

    const body = options.body;
    if (body === undefined) {
      upstream.end();
      return;
    }
    // A declared length over the limit was refused before forwarding; the parser stops at it.
    const source = options.chunked ? body.pipe(new BodyLimiter(options.maxBodyBytes)) : body;
    if (source !== body) {
      source.on('error', (err) => upstream.destroy(err));
    }
    body.on('error', (err) => upstream.destroy(err));
    body.once(BODY_FRAMING_FAILED, (err: ProxyError) => {
      body.unpipe();
      upstream.destroy(err);
    });
    source.pipe(upstream);
  });
}

function classifySocketError(err: NodeJS.ErrnoException, phase: 'connect' | 'request'): [ProxyErrorCode, string] {
  const code = err.code ?? '';
  if (code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH') {
    return ['FHIRMESH_UPSTREAM_REFUSED', 'the next hop refused the connection'];
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return ['FHIRMESH_UPSTREAM_REFUSED', 'the next hop\'s host name could not be resolved'];
  }
  if (code.startsWith('HPE_')) return ['FHIRMESH_UPSTREAM_BAD_RESPONSE', 'the next hop sent a malformed HTTP response'];
  if (code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || code.includes('CERT') || code.startsWith('UNABLE_TO') || code === 'EPROTO') {
    return ['FHIRMESH_UPSTREAM_TLS', `TLS with the next hop failed (${code}); check the route's CA bundle, server name and, if the next hop asks for one, client certificate`];
  }
  if (phase === 'connect') return ['FHIRMESH_UPSTREAM_REFUSED', `could not connect to the next hop (${code || 'error'})`];
  return ['FHIRMESH_UPSTREAM_RESET', 'the next hop closed the connection before answering'];
}

/** Streams the upstream answer back unchanged (bar the opt-in URL rewrite). */
function relay(exchange: Exchange, request: ForwardRequest, backend: CompiledBackend): Promise<void> {
  const { response, upstream } = exchange;
  const { res, route } = request;
  const status = response.statusCode ?? 502;
  let headers = downstreamResponseHeaders(response.rawHeaders);
  let body: NodeJS.ReadableStream = response;
  const publicBase = route.rewriteResponseUrls ? route.publicBaseUrl : undefined;
  if (publicBase !== undefined && publicBase !== backend.baseUrl) {
    const rewriteBody = isRewritableBody(response.headers['content-type'], response.headers['content-encoding']);
    const rewritten: string[] = [];
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i] as string;
      const lower = name.toLowerCase();
      // A rewritten body has a new length, sent chunked.
      if (rewriteBody && lower === 'content-length') continue;
      const value = headers[i + 1] as string;
      rewritten.push(name, URL_HEADERS.has(lower) ? rewriteUrlPrefix(value, backend.baseUrl, publicBase) : value);
    }
    headers = rewritten;
    if (rewriteBody) body = response.pipe(new StreamingReplace(backend.baseUrl, publicBase));
  }

  return new Promise<void>((resolve, reject) => {
    let done = false;
    const finish = (err?: unknown): void => {
      if (done) return;
      done = true;
      if (err === undefined) {
        resolve();
        return;
      }
      upstream.destroy();
      res.destroy();
      reject(new ResponseAbortedError(status, err));
    };
    // The exchange has started: silence now means a stuck transfer, which only aborting can report.
    upstream.setTimeout(route.idleTimeoutMs, () => finish(new Error('idle timeout')));

    res.writeHead(status, response.statusMessage, headers);
    response.on('error', (err) => finish(err));
    response.on('close', () => {
      if (!response.complete) finish(new Error('the next hop closed the connection mid-response'));
    });
    res.on('close', () => {
      if (!res.writableFinished) finish(new Error('the originator went away'));
    });
    res.on('finish', () => finish());
    if (body !== response) (body as Transform).on('error', (err) => finish(err));
    body.pipe(res);
  });
}
