// The tracing half of request telemetry, free of OpenTelemetry types: request-telemetry.ts holds one
// only when tracing is on, and internal/otel-request-tracer.ts (loaded on demand) implements it.

import type { AttemptResult, NumberedAttempt, RequestResult, RequestStart, RoutedRequest } from './request-facts.ts';

export interface RequestTracer {
  /** The server span of one request, continuing the originator's trace context when it is valid. */
  startServer(start: RequestStart): ServerSpan;
  /** Exports what is buffered and stops. */
  shutdown(): Promise<void>;
}

export interface ServerSpan {
  routed(request: RoutedRequest): void;
  /** A client span, child of this one, for one upstream attempt. */
  attempt(attempt: NumberedAttempt): AttemptSpan;
  end(result: RequestResult): void;
  /** For the access line: this span's ids, or nothing when it is not sampled. */
  ids(): { traceId?: string; spanId?: string };
}

export interface AttemptSpan {
  /** traceparent (and tracestate) naming this client span, as [name, value, ...]. */
  readonly traceHeaders: readonly string[];
  connected(milliseconds: number): void;
  firstByte(status: number): void;
  end(result: AttemptResult): void;
}
