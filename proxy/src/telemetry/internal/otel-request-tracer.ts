// RequestTracer on OpenTelemetry: a SERVER span per request and a CLIENT span per upstream attempt,
// W3C trace context continued from the originator and sent upstream. Imported only when tracing is on.

import { type Context, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, trace, type TextMapGetter } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { Tracing } from '../../../../runtime/index.ts';
import { FHIR_R4_RESOURCE_TYPES } from '../fhir-resource-types.ts';
import type { AttemptResult, NumberedAttempt, RequestResult, RequestStart, RoutedRequest } from '../request-facts.ts';
import type { AttemptSpan, RequestTracer, ServerSpan } from '../request-tracer.ts';

// Semantic conventions (HTTP, stable) by name: the package's constants module is larger than the
// few strings used. Nothing here is request text: the URL attribute is the route template.
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'CONNECT', 'TRACE']);

interface Carrier {
  traceparent: string | undefined;
  tracestate: string | undefined;
}
const getter: TextMapGetter<Carrier> = {
  keys: () => ['traceparent', 'tracestate'],
  get: (carrier, key) => (key === 'traceparent' ? carrier.traceparent : key === 'tracestate' ? carrier.tracestate : undefined),
};

export function createOtelRequestTracer(tracing: Tracing): RequestTracer {
  const propagator = new W3CTraceContextPropagator();
  // No context manager is registered: parents are passed explicitly, so AsyncLocalStorage is never touched.
  const tracer = tracing.tracer;
  return {
    startServer(start: RequestStart): ServerSpan {
      const parent = start.traceparent === undefined ? ROOT_CONTEXT : propagator.extract(ROOT_CONTEXT, { traceparent: start.traceparent, tracestate: start.tracestate }, getter);
      const method = KNOWN_METHODS.has(start.method) ? start.method : '_OTHER';
      const span = tracer.startSpan(method, { kind: SpanKind.SERVER, attributes: { 'http.request.method': method, 'url.scheme': start.scheme, 'network.protocol.version': '1.1' } }, parent);
      // Most requests at a low sampling ratio: nothing is recorded, so nothing more is built.
      return span.isRecording() ? new OtelServerSpan(tracer, span, method) : new UnsampledServerSpan(span);
    },
    shutdown: () => tracing.shutdown(),
  };
}

/**
 * A request the sampler left out. The trace context still goes upstream (W3C: a tracing hop takes
 * part), naming this hop's span, unsampled: every attempt sends the same headers and no client span
 * is made, since no one will ever see one.
 */
class UnsampledServerSpan implements ServerSpan {
  readonly #span: Span;
  #attempt: AttemptSpan | undefined;

  constructor(span: Span) {
    this.#span = span;
  }

  routed(): void {}

  attempt(): AttemptSpan {
    this.#attempt ??= unrecordedAttempt(traceHeadersOf(this.#span));
    return this.#attempt;
  }

  end(): void {}

  ids(): { traceId?: string; spanId?: string } {
    const { traceId, spanId } = this.#span.spanContext();
    return { traceId, spanId };
  }
}

function unrecordedAttempt(traceHeaders: readonly string[]): AttemptSpan {
  return { traceHeaders, connected: () => undefined, firstByte: () => undefined, end: () => undefined };
}

/** traceparent (and tracestate) naming `span` as the parent, as [name, value, ...]. */
function traceHeadersOf(span: Span): readonly string[] {
  const { traceId, spanId, traceFlags, traceState } = span.spanContext();
  const traceparent = `00-${traceId}-${spanId}-${traceFlags.toString(16).padStart(2, '0')}`;
  const tracestate = traceState?.serialize();
  return tracestate === undefined || tracestate === '' ? ['traceparent', traceparent] : ['traceparent', traceparent, 'tracestate', tracestate];
}

class OtelServerSpan implements ServerSpan {
  readonly #tracer: Tracing['tracer'];
  readonly #span: Span;
  readonly #method: string;
  readonly #context: Context;
  #routed: RoutedRequest | undefined;

  constructor(tracer: Tracing['tracer'], span: Span, method: string) {
    this.#tracer = tracer;
    this.#span = span;
    this.#method = method;
    this.#context = trace.setSpan(ROOT_CONTEXT, span);
  }

  routed(request: RoutedRequest): void {
    this.#routed = request;
    this.#span.updateName(`${this.#method} ${request.routeTemplate}`);
    this.#span.setAttributes({
      'http.route': request.routeTemplate,
      'fhir.destination': request.destination,
      'fhir.interaction': request.interaction,
      'fhirmesh.rule': request.rule ?? '(default)',
      // Bounded as the metric label is: an R4 type, else other (a word in that place of the path stays out).
      ...(request.resourceType !== undefined ? { 'fhir.resource_type': FHIR_R4_RESOURCE_TYPES.has(request.resourceType) ? request.resourceType : 'other' } : {}),
    });
  }

  attempt(attempt: NumberedAttempt): AttemptSpan {
    const routed = this.#routed;
    const url = routed?.backendUrl;
    const span = this.#tracer.startSpan(
      routed === undefined ? this.#method : `${this.#method} ${routed.routeTemplate}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'http.request.method': this.#method,
          ...(url !== undefined ? { 'server.address': url.hostname, 'server.port': portOf(url), 'url.scheme': url.protocol.slice(0, -1) } : {}),
          ...(routed !== undefined ? { 'url.template': routed.routeTemplate, 'fhir.destination': routed.destination, 'fhirmesh.rule': routed.rule ?? '(default)' } : {}),
          ...(attempt.attempt > 1 ? { 'http.request.resend_count': attempt.attempt - 1 } : {}),
          ...(attempt.retryReason !== undefined ? { 'fhirmesh.retry_reason': attempt.retryReason } : {}),
        },
      },
      this.#context,
    );
    return new OtelAttemptSpan(span);
  }

  end(result: RequestResult): void {
    const span = this.#span;
    span.setAttribute('http.response.status_code', result.status);
    // Which side a failure came from: the intermediary (its own error) or the destination (4xx/5xx, a cut response).
    if (result.errorCode !== undefined || result.aborted || result.status >= 400) span.setAttribute('fhirmesh.error_origin', result.origin);
    if (result.errorCode !== undefined) {
      // The intermediary's own error: recorded as the span's error, with the OperationOutcome's text.
      span.setAttributes({ 'fhirmesh.error_code': result.errorCode, 'error.type': result.errorCode });
      span.addEvent('exception', { 'exception.type': result.errorCode, ...(result.errorMessage !== undefined ? { 'exception.message': result.errorMessage } : {}) });
      span.setStatus({ code: SpanStatusCode.ERROR, message: result.errorCode });
    } else if (result.aborted) {
      span.setAttributes({ 'fhirmesh.aborted': true, 'error.type': 'aborted' });
      span.setStatus({ code: SpanStatusCode.ERROR, message: 'the response was cut after it had started' });
    } else if (result.status >= 500) {
      span.setAttribute('error.type', String(result.status));
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
    span.end();
  }

  ids(): { traceId?: string; spanId?: string } {
    const { traceId, spanId } = this.#span.spanContext();
    return { traceId, spanId };
  }
}

class OtelAttemptSpan implements AttemptSpan {
  readonly traceHeaders: readonly string[];
  readonly #span: Span;

  constructor(span: Span) {
    this.#span = span;
    this.traceHeaders = traceHeadersOf(span);
  }

  connected(milliseconds: number): void {
    if (this.#span.isRecording()) this.#span.addEvent('fhirmesh.upstream.connected', { 'fhirmesh.connect_ms': Math.round(milliseconds * 1000) / 1000 });
  }

  firstByte(status: number): void {
    if (this.#span.isRecording()) this.#span.addEvent('fhirmesh.upstream.first_byte', { 'http.response.status_code': status });
  }

  end(result: AttemptResult): void {
    const span = this.#span;
    if (span.isRecording()) {
      if (result.status !== undefined) span.setAttribute('http.response.status_code', result.status);
      if (result.retryReason !== undefined) span.setAttribute('fhirmesh.retried_for', result.retryReason);
      if (result.errorCode !== undefined) {
        span.setAttributes({ 'fhirmesh.error_code': result.errorCode, 'error.type': result.errorCode });
        span.setStatus({ code: SpanStatusCode.ERROR, message: result.errorCode });
      } else if (result.aborted === true) {
        span.setAttributes({ 'fhirmesh.aborted': true, 'error.type': 'aborted' });
        span.setStatus({ code: SpanStatusCode.ERROR });
      } else if (result.status !== undefined && result.status >= 500) {
        span.setAttribute('error.type', String(result.status));
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
    }
    span.end();
  }
}

function portOf(url: URL): number {
  if (url.port !== '') return Number(url.port);
  return url.protocol === 'https:' ? 443 : 80;
}
