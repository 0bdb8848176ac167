// One request forwarded and answered: upstream connection from the pool, request head written
// once, body streamed with this hop's framing, the route's three clocks (connect, first byte, idle),
// retries of idempotent bodiless requests, and the response relayed with framing of our own.

import type { CompiledBackend, CompiledRoute, RetryOn } from '../../../api/index.ts';
import { PROXY_ERRORS, ProxyError, type ProxyErrorCode } from '../errors.ts';
import { downstreamResponseHeaders } from '../forward/headers.ts';
import { isRewritableBody, rewriteUrlPrefix, UrlPrefixRewriter, URL_HEADERS } from '../forward/url-rewriter.ts';
import type { BodyFraming } from '../server/request-framing.ts';
import type { BodySink, DownstreamRequest, ResponseFraming } from './downstream-connection.ts';
import type { MessageHead } from './http1-parser.ts';
import type { BackendTarget, ConnectionUser, UpstreamConnection, UpstreamPools } from './upstream-pool.ts';
import { httpDate } from './http-date.ts';
import { chunkPrefix, CRLF, LAST_CHUNK } from './wire-format.ts';
import type { AttemptHandle, RequestHandle, RetryReason } from '../telemetry/request-telemetry.ts';

export interface ExchangeResult {
  status: number;
  origin: 'intermediary' | 'destination';
  errorCode: ProxyErrorCode | undefined;
  /** The intermediary's message for errorCode, when it answered itself. */
  errorMessage?: string;
  aborted: boolean;
  attempts: number;
}

export interface ExchangeSpec {
  request: DownstreamRequest;
  route: CompiledRoute;
  backend: CompiledBackend;
  target: BackendTarget;
  pools: UpstreamPools;
  /** The upstream request line and header lines (`GET /r4/Patient HTTP/1.1\r\nHost: ...\r\n`), without the blank line. */
  head: string;
  /** This request's telemetry: told of each attempt, and gives the trace context each one sends. */
  telemetry: RequestHandle;
  framing: BodyFraming;
  /** Writes an intermediary error (OperationOutcome) for this request, or aborts once the head is out. */
  answerError(error: ProxyError): number;
  done(result: ExchangeResult): void;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);
const RETRYABLE_STATUS = new Map<number, RetryOn>([
  [502, 'bad-gateway'],
  [503, 'unavailable'],
  [504, 'gateway-timeout'],
]);
const RETRY_BACKOFF_MS = 25;

type Phase = 'acquire' | 'connect' | 'send' | 'wait' | 'relay' | 'discard' | 'done';

export class Exchange implements ConnectionUser, BodySink {
  readonly #spec: ExchangeSpec;
  readonly #replayable: boolean;
  readonly #maxAttempts: number;
  #attempt = 0;
  #staleSocketRetried = false;
  #connection: UpstreamConnection | undefined;
  #phase: Phase = 'acquire';
  #timer: NodeJS.Timeout | undefined;
  /** Deadline of the phase clock (connect or first byte), 0 when none runs. */
  #phaseDeadline = 0;
  #phaseCode: ProxyErrorCode = 'FHIRMESH_UPSTREAM_TIMEOUT';
  #phaseMessage = '';
  #lastActivity = 0;
  #bodyBytes = 0;
  #bodyEnded = false;
  #status = 0;
  #rewriter: UrlPrefixRewriter | undefined;
  #laterError: ProxyErrorCode | undefined;
  #upstreamPaused = false;
  #headPending = false;
  /** The head of the current attempt: the request's, plus this attempt's trace context. */
  #attemptHead = '';
  #attemptEvents: AttemptHandle | undefined;
  #retryReason: RetryReason | undefined;
  /** The connection was opened for this attempt (its connect time is observed), not taken from the pool. */
  #freshConnection = false;
  readonly #onAcquire = (connection: UpstreamConnection): void => this.#acquired(connection);

  constructor(spec: ExchangeSpec) {
    this.#spec = spec;
    const method = spec.request.head.method;
    this.#replayable = spec.framing.kind === 'none' || (spec.framing.kind === 'length' && spec.framing.length === 0) ? IDEMPOTENT.has(method) : false;
    this.#maxAttempts = this.#replayable ? 1 + spec.route.retryAttempts : 1;
    spec.request.onGone(() => this.#originatorGone());
    spec.request.onDrain(() => this.#downstreamDrained());
  }

  start(): void {
    this.#attempt++;
    this.#phase = 'acquire';
    const events = this.#spec.telemetry.attemptStarted({ retryReason: this.#retryReason });
    this.#attemptEvents = events;
    let head = this.#spec.head;
    const trace = events.upstreamHeaders();
    for (let i = 0; i < trace.length; i += 2) head += `${trace[i] as string}: ${trace[i + 1] as string}${CRLF}`;
    this.#attemptHead = head + CRLF;
    this.#lastActivity = performance.now();
    this.#armIdle();
    this.#spec.pools.pool(this.#spec.target).acquire(this.#onAcquire);
  }

  #acquired(connection: UpstreamConnection): void {
    if (this.#phase !== 'acquire') {
      // Given up meanwhile: hand it straight back.
      connection.abandon();
      return;
    }
    this.#connection = connection;
    this.#phase = 'connect';
    this.#freshConnection = !connection.connected;
    if (!connection.connected) {
      const ms = this.#spec.route.connectTimeoutMs;
      this.#setPhaseClock(ms, 'FHIRMESH_UPSTREAM_TIMEOUT', `no connection to the next hop within ${ms} ms`);
    }
    connection.attach(this);
  }

  // --- ConnectionUser -------------------------------------------------------------------------

  onConnected(): void {
    if (this.#phase !== 'connect') return;
    this.#phaseDeadline = 0;
    this.#phase = 'send';
    const connection = this.#connection as UpstreamConnection;
    this.#lastActivity = performance.now();
    if (this.#freshConnection) this.#attemptEvents?.upstreamConnected();
    if (this.#spec.framing.kind === 'none' || (this.#spec.framing.kind === 'length' && this.#spec.framing.length === 0)) {
      connection.socket.write(this.#attemptHead, 'latin1');
      this.#requestSent();
      return;
    }
    // The head leaves with the first body bytes (one write, and nothing at all if the body turns
    // out malformed before any of it arrived).
    this.#headPending = true;
    this.#spec.request.setBodySink(this);
  }

  onResponseHead(head: MessageHead): boolean {
    if (this.#phase === 'done') return true;
    this.#lastActivity = performance.now();
    this.#phaseDeadline = 0;
    const status = head.statusCode;
    if (status === 101) {
      this.#fail('FHIRMESH_UPSTREAM_BAD_RESPONSE', 'the next hop switched protocols (101) although no upgrade was asked for');
      return true;
    }
    // Interim answers (100, 102, 103) are this hop's business: the final one follows.
    if (status < 200) return false;
    const failure = badResponse(head);
    if (failure !== undefined) {
      this.#fail('FHIRMESH_UPSTREAM_BAD_RESPONSE', failure);
      return true;
    }
    const isHead = this.#spec.request.head.method === 'HEAD';
    this.#attemptEvents?.firstByte(status);
    const condition = RETRYABLE_STATUS.get(status);
    if (this.#attempt < this.#maxAttempts && condition !== undefined && this.#spec.route.retryOn.includes(condition)) {
      // Read it to its end (so the connection can be reused), then try again.
      this.#phase = 'discard';
      this.#retryReason = condition;
      this.#attemptEvents?.finished({ status, retryReason: condition });
      return isHead;
    }
    this.#phase = 'relay';
    this.#status = status;
    this.#laterError = laterIntermediaryError(head.rawHeaders);
    this.#writeResponseHead(head, isHead);
    return isHead;
  }

  onResponseBody(chunk: Buffer): void {
    if (this.#phase !== 'relay') return;
    this.#lastActivity = performance.now();
    const request = this.#spec.request;
    let ok = true;
    if (this.#rewriter !== undefined) {
      for (const part of this.#rewriter.write(chunk)) ok = request.writeBody(part) && ok;
    } else {
      ok = request.writeBody(chunk);
    }
    if (!ok && !this.#upstreamPaused) {
      this.#upstreamPaused = true;
      this.#connection?.pauseReading();
    }
  }

  onResponseComplete(): void {
    const connection = this.#connection;
    this.#connection = undefined;
    if (this.#phase === 'discard') {
      void connection;
      this.#retryAfterBackoff();
      return;
    }
    if (this.#phase !== 'relay') return;
    if (this.#upstreamPaused) connection?.resumeReading();
    if (this.#rewriter !== undefined) for (const part of this.#rewriter.flush()) this.#spec.request.writeBody(part);
    this.#spec.request.end();
    this.#attemptEvents?.finished({ status: this.#status });
    // A later hop's own error answer, passed through unchanged, is the intermediaries', not the destination's.
    this.#finish({ status: this.#status, origin: this.#laterError === undefined ? 'destination' : 'intermediary', errorCode: this.#laterError, aborted: false });
  }

  onConnectionError(err: NodeJS.ErrnoException | undefined, parseFailure: string | undefined): void {
    const connection = this.#connection;
    this.#connection = undefined;
    if (this.#phase === 'done') return;
    if (this.#phase === 'relay') {
      // The status line is out: a truncated body can only be reported by cutting the connection.
      this.#abortDownstream();
      return;
    }
    const phase = this.#phase === 'acquire' || this.#phase === 'connect' ? 'connect' : 'request';
    const [code, message] = parseFailure !== undefined
      ? (['FHIRMESH_UPSTREAM_BAD_RESPONSE', 'the next hop sent a malformed HTTP response'] as const)
      : classifySocketError(err, phase);
    // A pooled socket the server had just closed is not the backend's failure: once more, fresh.
    if (connection?.reused === true && code === 'FHIRMESH_UPSTREAM_RESET' && this.#replayable && !this.#staleSocketRetried && !this.#spec.request.finished) {
      this.#staleSocketRetried = true;
      this.#attempt--;
      this.#clearTimer();
      this.#retryReason = 'stale-socket';
      this.#attemptEvents?.finished({ errorCode: code, retryReason: 'stale-socket' });
      this.start();
      return;
    }
    const reason: RetryReason = phase === 'connect' ? 'connect-failure' : 'reset';
    const retryable = phase === 'connect' ? this.#spec.route.retryOn.includes('connect-failure') : code === 'FHIRMESH_UPSTREAM_RESET' && this.#spec.route.retryOn.includes('reset');
    if (this.#attempt < this.#maxAttempts && retryable) {
      this.#retryReason = reason;
      this.#attemptEvents?.finished({ errorCode: code, retryReason: reason });
      this.#retryAfterBackoff();
      return;
    }
    this.#answer(new ProxyError(code, message, { cause: err }));
  }

  onReadEnd(): void {
    this.#spec.request.flush();
  }

  onDrain(): void {
    // The upstream socket took what was queued: read more of the originator's body.
    if (this.#phase === 'send') this.#spec.request.resumeBody();
  }

  // --- BodySink (the originator's body) ------------------------------------------------------

  onData(chunk: Buffer): void {
    const connection = this.#connection;
    if (connection === undefined || this.#phase === 'done') return;
    this.#lastActivity = performance.now();
    this.#bodyBytes += chunk.length;
    const framing = this.#spec.framing;
    if (framing.kind === 'chunked' && this.#bodyBytes > this.#spec.route.maxRequestBodyBytes) {
      this.#fail('FHIRMESH_BODY_TOO_LARGE', `the request body is larger than this route allows (${this.#spec.route.maxRequestBodyBytes} bytes); send a smaller body`);
      return;
    }
    const socket = connection.socket;
    let ok: boolean;
    if (framing.kind === 'chunked') {
      socket.cork();
      this.#writePendingHead(socket);
      socket.write(chunkPrefix(chunk.length), 'latin1');
      socket.write(chunk);
      ok = socket.write(CRLF, 'latin1');
      process.nextTick(() => socket.uncork());
    } else if (this.#headPending) {
      socket.cork();
      this.#writePendingHead(socket);
      ok = socket.write(chunk);
      process.nextTick(() => socket.uncork());
    } else {
      ok = socket.write(chunk);
    }
    if (!ok) this.#spec.request.pauseBody();
  }

  onEnd(): void {
    if (this.#connection === undefined || this.#phase === 'done') return;
    this.#bodyEnded = true;
    this.#writePendingHead(this.#connection.socket);
    if (this.#spec.framing.kind === 'chunked') this.#connection.socket.write(LAST_CHUNK, 'latin1');
    if (this.#phase === 'send') this.#requestSent();
  }

  onFailure(error: ProxyError): void {
    this.#fail(error.code, error.message);
  }

  // --- internals -----------------------------------------------------------------------------

  #writePendingHead(socket: UpstreamConnection['socket']): void {
    if (!this.#headPending) return;
    this.#headPending = false;
    socket.write(this.#attemptHead, 'latin1');
  }

  #requestSent(): void {
    this.#connection?.requestWritten();
    this.#phase = 'wait';
    const ms = this.#spec.route.firstByteTimeoutMs;
    this.#setPhaseClock(ms, 'FHIRMESH_UPSTREAM_TIMEOUT', `the next hop sent no response within ${ms} ms`);
  }

  #writeResponseHead(head: MessageHead, isHead: boolean): void {
    const { route, backend, request } = this.#spec;
    const publicBase = route.rewriteResponseUrls ? route.publicBaseUrl : undefined;
    const rewrite = publicBase !== undefined && publicBase !== backend.baseUrl;
    const headers = downstreamResponseHeaders(head.rawHeaders);
    const bodiless = isHead || head.statusCode === 204 || head.statusCode === 304;
    let contentLength = -1;
    let contentType: string | undefined;
    let contentEncoding: string | undefined;
    let hasDate = false;
    for (let i = 0; i < headers.length; i += 2) {
      const lower = (headers[i] as string).toLowerCase();
      if (lower === 'content-length') contentLength = Number((headers[i + 1] as string).trim());
      else if (lower === 'content-type') contentType = headers[i + 1];
      else if (lower === 'content-encoding') contentEncoding = headers[i + 1];
      else if (lower === 'date') hasDate = true;
    }
    const rewriteBody = rewrite && !bodiless && isRewritableBody(contentType, contentEncoding);
    let block = '';
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i] as string;
      let value = headers[i + 1] as string;
      const lower = name.toLowerCase();
      // A body that is relayed carries this hop's Content-Length (or none, when rewritten);
      // a bodiless answer keeps the destination's as it was (the size a GET would have had).
      if (lower === 'content-length' && !bodiless) continue;
      if (rewrite && URL_HEADERS.has(lower)) value = rewriteUrlPrefix(value, backend.baseUrl, publicBase);
      block += `${name}: ${value}${CRLF}`;
    }
    // RFC 9110 6.6.1: a recipient with a clock adds Date to a response forwarded without one.
    if (!hasDate) block += `Date: ${httpDate()}${CRLF}`;
    let framing: ResponseFraming;
    if (bodiless) framing = 'none';
    else if (contentLength >= 0 && !rewriteBody) framing = 'length';
    else framing = 'chunked';
    if (rewriteBody) this.#rewriter = new UrlPrefixRewriter(backend.baseUrl, publicBase);
    request.writeHead(head.statusCode, head.statusMessage, block, framing, contentLength);
  }

  #retryAfterBackoff(): void {
    this.#phase = 'acquire';
    this.#clearTimer();
    const delay = RETRY_BACKOFF_MS * 2 ** (this.#attempt - 1);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#phase === 'acquire' && !this.#spec.request.finished) this.start();
    }, delay);
  }

  #setPhaseClock(ms: number, code: ProxyErrorCode, message: string): void {
    this.#phaseDeadline = performance.now() + ms;
    this.#phaseCode = code;
    this.#phaseMessage = message;
    this.#armIdle();
  }

  /**
   * One timer serves every clock: it fires at the nearest deadline and re-arms when activity moved
   * the idle deadline, so a streaming body costs a timestamp per chunk, not a timer.
   */
  #armIdle(): void {
    const now = performance.now();
    const idleDeadline = this.#lastActivity + this.#spec.route.idleTimeoutMs;
    const deadline = this.#phaseDeadline > 0 ? Math.min(this.#phaseDeadline, idleDeadline) : idleDeadline;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#onTimer(), Math.max(1, deadline - now));
  }

  #onTimer(): void {
    this.#timer = undefined;
    if (this.#phase === 'done') return;
    const now = performance.now();
    if (this.#phaseDeadline > 0 && now >= this.#phaseDeadline) {
      this.#fail(this.#phaseCode, this.#phaseMessage);
      return;
    }
    const idleMs = this.#spec.route.idleTimeoutMs;
    if (now - this.#lastActivity >= idleMs) {
      if (this.#phase === 'relay') {
        this.#abortDownstream();
        return;
      }
      // Mid-upload, silence is the originator's unless the next hop stopped reading.
      if (this.#phase === 'send' && !this.#bodyEnded && this.#connection?.socket.writableNeedDrain !== true) {
        this.#fail('FHIRMESH_CLIENT_TIMEOUT', `the originator sent no more of its request body for ${idleMs} ms`);
        return;
      }
      this.#fail('FHIRMESH_UPSTREAM_TIMEOUT', `the next hop was silent for ${idleMs} ms`);
      return;
    }
    this.#armIdle();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#phaseDeadline = 0;
  }

  #downstreamDrained(): void {
    if (this.#upstreamPaused) {
      this.#upstreamPaused = false;
      this.#connection?.resumeReading();
    }
  }

  #originatorGone(): void {
    if (this.#phase === 'done') return;
    const relaying = this.#phase === 'relay';
    this.#connection?.abandon();
    this.#connection = undefined;
    if (relaying) {
      this.#attemptEvents?.finished({ status: this.#status, aborted: true });
      this.#finish({ status: this.#status, origin: 'destination', errorCode: undefined, aborted: true });
      return;
    }
    this.#attemptEvents?.finished({ errorCode: 'FHIRMESH_UPSTREAM_RESET' });
    this.#finish({ status: 502, origin: 'intermediary', errorCode: 'FHIRMESH_UPSTREAM_RESET', errorMessage: 'the originator went away', aborted: false });
  }

  /** Gives up the upstream attempt and answers the originator (or cuts it, once the head is out). */
  #fail(code: ProxyErrorCode, message: string): void {
    if (this.#phase === 'done') return;
    if (this.#phase === 'acquire') this.#spec.pools.pool(this.#spec.target).cancel(this.#onAcquire);
    this.#connection?.abandon();
    this.#connection = undefined;
    if (this.#phase === 'relay') {
      this.#abortDownstream();
      return;
    }
    this.#answer(new ProxyError(code, message));
  }

  #answer(error: ProxyError): void {
    this.#clearTimer();
    // The attempt in progress (if one had started) ends with this failure.
    if (this.#phase !== 'acquire' || this.#attemptEvents !== undefined) this.#attemptEvents?.finished({ errorCode: error.code });
    this.#attemptEvents = undefined;
    this.#phase = 'done';
    // The originator's body was not all read: the connection cannot carry another request.
    if (!this.#spec.request.bodyComplete) this.#spec.request.closeAfter = true;
    const status = this.#spec.answerError(error);
    this.#spec.done({ status, origin: 'intermediary', errorCode: error.code, errorMessage: error.message, aborted: false, attempts: this.#attempt });
  }

  #abortDownstream(): void {
    this.#connection?.abandon();
    this.#connection = undefined;
    if (this.#spec.request.retract()) {
      // Nothing of the response had left yet: the originator gets a status, not a cut.
      this.#answer(new ProxyError('FHIRMESH_UPSTREAM_BAD_RESPONSE', 'the next hop\'s response failed before any of it was relayed'));
      return;
    }
    this.#spec.request.abort();
    this.#attemptEvents?.finished({ status: this.#status, aborted: true });
    this.#finish({ status: this.#status, origin: 'destination', errorCode: undefined, aborted: true });
  }

  #finish(result: Omit<ExchangeResult, 'attempts'>): void {
    if (this.#phase === 'done') return;
    this.#clearTimer();
    this.#phase = 'done';
    this.#spec.request.onGone(undefined);
    this.#spec.request.onDrain(undefined);
    this.#spec.done({ ...result, attempts: this.#attempt });
  }
}

/** A later intermediary's own error answer: its `Fhirmesh-Error` names a code fhirmesh knows. */
function laterIntermediaryError(raw: readonly string[]): ProxyErrorCode | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length !== 14 || name.toLowerCase() !== 'fhirmesh-error') continue;
    const value = (raw[i + 1] as string).trim();
    return Object.hasOwn(PROXY_ERRORS, value) ? (value as ProxyErrorCode) : undefined;
  }
  return undefined;
}

/** What makes a response head unrelayable, or undefined. */
function badResponse(head: MessageHead): string | undefined {
  if (head.versionMajor !== 1) return `the next hop answered HTTP/${head.versionMajor}.${head.versionMinor} on an HTTP/1.1 connection`;
  const raw = head.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length !== 17 || name.toLowerCase() !== 'transfer-encoding') continue;
    // RFC 9112 6.1: Transfer-Encoding on HTTP/1.0 means the framing cannot be trusted.
    if (head.versionMinor === 0) return 'the next hop answered HTTP/1.0 with Transfer-Encoding, whose framing cannot be trusted';
    // Transfer codings are per hop and only chunked is undone here.
    if ((raw[i + 1] as string).trim().toLowerCase() !== 'chunked') {
      return 'the next hop used a transfer coding other than chunked, which this intermediary does not decode';
    }
  }
  return undefined;
}

function classifySocketError(err: NodeJS.ErrnoException | undefined, phase: 'connect' | 'request'): [ProxyErrorCode, string] {
  const code = err?.code ?? '';
  if (code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH') {
    return ['FHIRMESH_UPSTREAM_REFUSED', 'the next hop refused the connection'];
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return ['FHIRMESH_UPSTREAM_REFUSED', "the next hop's host name could not be resolved"];
  }
  if (code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || code.includes('CERT') || code.startsWith('UNABLE_TO') || code === 'EPROTO') {
    return ['FHIRMESH_UPSTREAM_TLS', `TLS with the next hop failed (${code}); check the route's CA bundle, server name and, if the next hop asks for one, client certificate`];
  }
  if (phase === 'connect') return ['FHIRMESH_UPSTREAM_REFUSED', `could not connect to the next hop (${code || 'closed'})`];
  return ['FHIRMESH_UPSTREAM_RESET', 'the next hop closed the connection before answering'];
}
