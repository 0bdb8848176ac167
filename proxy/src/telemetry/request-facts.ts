// The plain values a forwarding engine hands the request telemetry (request-telemetry.ts) and that
// the tracer (request-tracer.ts) reads: no node:http, prom-client or OpenTelemetry types.

import type { ProxyErrorCode } from '../errors.ts';
import type { RetryReason } from './metrics.ts';

/** What is known when the request head has been read. */
export interface RequestStart {
  method: string;
  scheme: 'http' | 'https';
  /** The originator's W3C trace context, exactly as received; undefined when absent or repeated. */
  traceparent: string | undefined;
  tracestate: string | undefined;
  /** Reads one request header (lower-case name); asked only for the names given to --log-headers. */
  header?: (name: string) => string | undefined;
}

/** What routing found: all from the table and the PHI-free classification, never request text. */
export interface RoutedRequest {
  destination: string;
  interaction: string;
  resourceType: string | undefined;
  /** `Patient/{id}`: the path with ids replaced (metadata/fhir-request.ts). */
  routeTemplate: string;
  /** The delegation rule whose backend serves the request; undefined for the route's own backend. */
  rule: string | undefined;
  /** The backend's base URL from the table (logged as its origin only). */
  backendUrl: URL;
}

export interface AttemptStart {
  /** Why the previous attempt is being made again; undefined for the first. */
  retryReason: RetryReason | undefined;
}

/** What the tracer is told of an attempt: the seam counts attempts itself (1 for the first). */
export interface NumberedAttempt extends AttemptStart {
  attempt: number;
}

export interface AttemptResult {
  /** The status the next hop answered, when it answered. */
  status?: number;
  /** The failure, when the attempt ended without a usable answer. */
  errorCode?: ProxyErrorCode;
  /** Set when another attempt follows this one. */
  retryReason?: RetryReason;
  /** The response had started and was cut. */
  aborted?: boolean;
}

export interface RequestResult {
  status: number;
  origin: 'intermediary' | 'destination';
  errorCode: ProxyErrorCode | undefined;
  /** The intermediary's message for errorCode (the OperationOutcome's diagnostics). */
  errorMessage?: string;
  aborted: boolean;
}
