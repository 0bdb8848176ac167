// Everything the proxy emits about one request — metrics, the access line, the server span, a client
// span per upstream attempt and the trace context sent upstream — behind one engine-neutral seam.
// Forwarding engines call it at a few points with plain values; they never see prom-client or OTel.

import { performance } from 'node:perf_hooks';
import type { ProxyErrorCode } from '../errors.ts';
import type { Logger } from './logger.ts';
import { type ProxyMetrics, ROUTE_BACKEND, UNKNOWN_DESTINATION } from './metrics.ts';
import type { AttemptResult, AttemptStart, RequestResult, RequestStart, RoutedRequest } from './request-facts.ts';
import type { AttemptSpan, RequestTracer, ServerSpan } from './request-tracer.ts';

export type { AttemptResult, AttemptStart, NumberedAttempt, RequestResult, RequestStart, RoutedRequest } from './request-facts.ts';
export type { RetryReason } from './metrics.ts';

/** One upstream attempt. */
export interface AttemptHandle {
  /**
   * Header fields to add to this attempt's request, [name, value, ...]: traceparent (and tracestate)
   * naming this attempt's client span. Empty when tracing is off: the originator's own trace
   * context, if any, then travels untouched with the other end-to-end headers.
   */
  upstreamHeaders(): readonly string[];
  /** A new connection to the next hop is up (not called for a reused pooled one). */
  upstreamConnected(): void;
  /** The response head arrived. */
  firstByte(status: number): void;
  finished(result: AttemptResult): void;
}

/** One request, from its head read to its last byte. */
export interface RequestHandle {
  /** True when attempts send trace context of their own: drop the originator's traceparent/tracestate. */
  readonly replacesTraceContext: boolean;
  routed(request: RoutedRequest): void;
  attemptStarted(attempt: AttemptStart): AttemptHandle;
  finished(result: RequestResult): void;
}

export interface RequestTelemetryOptions {
  metrics: ProxyMetrics;
  logger: Logger;
  accessLog: boolean;
  /** Loaded only when an OTLP endpoint is configured (internal/otel-request-tracer.ts). */
  tracer?: RequestTracer;
  /** Request headers copied into the access line; the logger redacts credentials among them by name. */
  logHeaders?: readonly string[];
}

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

export class RequestTelemetry {
  readonly #options: RequestTelemetryOptions;

  constructor(options: RequestTelemetryOptions) {
    this.#options = options;
  }

  start(start: RequestStart): RequestHandle {
    this.#options.metrics.requestStarted();
    return new Request(this.#options, start, this.#options.tracer?.startServer(start));
  }

  /** A request the HTTP parser refused: no request object, no span; counted and nothing else. */
  unparsed(status: number, errorCode: ProxyErrorCode): void {
    this.#options.metrics.requestRefused(
      { destination: UNKNOWN_DESTINATION, rule: ROUTE_BACKEND, method: 'OTHER', interaction: 'other', resourceType: undefined, status, origin: 'intermediary', errorCode },
      0,
    );
  }
}

class Request implements RequestHandle {
  readonly #options: RequestTelemetryOptions;
  readonly #start: RequestStart;
  readonly #startedAt = performance.now();
  readonly #span: ServerSpan | undefined;
  #routed: RoutedRequest | undefined;
  #rule = ROUTE_BACKEND;
  #attempts = 0;
  #done = false;

  constructor(options: RequestTelemetryOptions, start: RequestStart, span: ServerSpan | undefined) {
    this.#options = options;
    this.#start = start;
    this.#span = span;
  }

  get replacesTraceContext(): boolean {
    return this.#span !== undefined;
  }

  routed(request: RoutedRequest): void {
    this.#routed = request;
    this.#rule = request.rule ?? ROUTE_BACKEND;
    this.#span?.routed(request);
  }

  attemptStarted(attempt: AttemptStart): AttemptHandle {
    this.#attempts++;
    const routed = this.#routed;
    const destination = routed?.destination ?? UNKNOWN_DESTINATION;
    if (attempt.retryReason !== undefined) this.#options.metrics.upstreamRetried(destination, this.#rule, attempt.retryReason);
    return new Attempt(this.#options.metrics, destination, this.#rule, this.#span?.attempt({ attempt: this.#attempts, retryReason: attempt.retryReason }));
  }

  finished(result: RequestResult): void {
    if (this.#done) return;
    this.#done = true;
    const seconds = (performance.now() - this.#startedAt) / 1000;
    const routed = this.#routed;
    const destination = routed?.destination ?? UNKNOWN_DESTINATION;
    const { metrics, logger } = this.#options;
    if (result.aborted) metrics.responseAborted(destination);
    metrics.requestFinished(
      {
        destination,
        rule: this.#rule,
        method: this.#start.method,
        interaction: routed?.interaction ?? 'other',
        resourceType: routed?.resourceType,
        status: result.status,
        origin: result.origin,
        errorCode: result.errorCode,
      },
      seconds,
    );
    const span = this.#span;
    span?.end(result);
    if (!this.#options.accessLog) return;
    const ids = span?.ids() ?? originatorTraceIds(this.#start.traceparent);
    logger.log('info', 'access', {
      destination,
      method: this.#start.method,
      interaction: routed?.interaction ?? 'other',
      route: `${this.#start.method} ${routed?.routeTemplate ?? '{other}'}`,
      rule: this.#rule,
      ...(routed !== undefined ? { backend: routed.backendUrl.origin } : {}),
      status: result.status,
      origin: result.origin,
      durationMs: Math.round(seconds * 1e4) / 10,
      ...(this.#attempts > 1 ? { attempts: this.#attempts } : {}),
      ...(result.errorCode !== undefined ? { errorCode: result.errorCode } : {}),
      ...(result.aborted ? { aborted: true } : {}),
      ...ids,
      ...(this.#options.logHeaders !== undefined && this.#options.logHeaders.length > 0 ? { headers: this.#headers() } : {}),
    });
  }

  #headers(): Record<string, string> {
    const out: Record<string, string> = {};
    const read = this.#start.header;
    if (read === undefined) return out;
    for (const name of this.#options.logHeaders ?? []) {
      const value = read(name);
      if (value !== undefined) out[name] = value;
    }
    return out;
  }
}

class Attempt implements AttemptHandle {
  readonly #metrics: ProxyMetrics;
  readonly #destination: string;
  readonly #rule: string;
  readonly #span: AttemptSpan | undefined;
  /** Also when a new connection is opened: an engine opens it as the attempt starts. */
  readonly #startedAt = performance.now();
  #done = false;

  constructor(metrics: ProxyMetrics, destination: string, rule: string, span: AttemptSpan | undefined) {
    this.#metrics = metrics;
    this.#destination = destination;
    this.#rule = rule;
    this.#span = span;
  }

  upstreamHeaders(): readonly string[] {
    return this.#span?.traceHeaders ?? NO_HEADERS;
  }

  upstreamConnected(): void {
    const milliseconds = performance.now() - this.#startedAt;
    this.#metrics.upstreamConnected(this.#destination, this.#rule, milliseconds / 1000);
    this.#span?.connected(milliseconds);
  }

  firstByte(status: number): void {
    this.#metrics.upstreamFirstByte(this.#destination, this.#rule, (performance.now() - this.#startedAt) / 1000);
    this.#span?.firstByte(status);
  }

  finished(result: AttemptResult): void {
    if (this.#done) return;
    this.#done = true;
    this.#span?.end(result);
  }
}

const NO_HEADERS: readonly string[] = Object.freeze([]);

/**
 * Tracing off: the trace id the originator sent, so access lines still join its trace. The proxy
 * takes no part in it (no span of its own); the header itself travels upstream untouched.
 */
function originatorTraceIds(traceparent: string | undefined): { traceId?: string } {
  if (traceparent === undefined) return {};
  const match = TRACEPARENT.exec(traceparent);
  const traceId = match?.[1];
  return traceId === undefined || traceId === '00000000000000000000000000000000' ? {} : { traceId };
}
