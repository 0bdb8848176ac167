// Every failure the proxy itself can answer with, by stable code. Callers match on the code;
// outcome/operation-outcome.ts is the one place that maps a code to HTTP status and FHIR issue.

export const PROXY_ERRORS = {
  /** The request itself cannot be read safely: framing, request line, Host, or HTTP version. */
  FHIRMESH_REQUEST_MALFORMED: { status: 400, issue: 'structure' },
  /** The path would climb out of, or be read differently under, the backend's base path. */
  FHIRMESH_PATH_UNSAFE: { status: 400, issue: 'security' },
  FHIRMESH_METADATA_MALFORMED: { status: 400, issue: 'invalid' },
  FHIRMESH_METADATA_CONFLICT: { status: 400, issue: 'invalid' },
  FHIRMESH_DESTINATION_UNKNOWN: { status: 404, issue: 'not-found' },
  FHIRMESH_METHOD_NOT_ALLOWED: { status: 405, issue: 'not-supported' },
  FHIRMESH_CLIENT_TIMEOUT: { status: 408, issue: 'timeout' },
  FHIRMESH_BODY_TOO_LARGE: { status: 413, issue: 'too-long' },
  FHIRMESH_URI_TOO_LONG: { status: 414, issue: 'too-long' },
  FHIRMESH_EXPECTATION_FAILED: { status: 417, issue: 'not-supported' },
  FHIRMESH_HEADERS_TOO_LARGE: { status: 431, issue: 'too-long' },
  FHIRMESH_NOT_IMPLEMENTED: { status: 501, issue: 'not-supported' },
  FHIRMESH_UPSTREAM_REFUSED: { status: 502, issue: 'transient' },
  FHIRMESH_UPSTREAM_RESET: { status: 502, issue: 'transient' },
  FHIRMESH_UPSTREAM_BAD_RESPONSE: { status: 502, issue: 'transient' },
  FHIRMESH_UPSTREAM_TLS: { status: 502, issue: 'security' },
  FHIRMESH_NOT_READY: { status: 503, issue: 'transient' },
  /** The destination already has as many requests in flight through this proxy as it may. */
  FHIRMESH_OVERLOADED: { status: 503, issue: 'throttled' },
  FHIRMESH_UPSTREAM_TIMEOUT: { status: 504, issue: 'timeout' },
  FHIRMESH_VERSION_NOT_SUPPORTED: { status: 505, issue: 'not-supported' },
  FHIRMESH_LOOP_DETECTED: { status: 508, issue: 'processing' },
  FHIRMESH_INTERNAL: { status: 500, issue: 'exception' },
} as const satisfies Record<string, { status: number; issue: string }>;

export type ProxyErrorCode = keyof typeof PROXY_ERRORS;

export class ProxyError extends Error {
  readonly code: ProxyErrorCode;
  constructor(code: ProxyErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'ProxyError';
  }
}

export function isProxyError(err: unknown): err is ProxyError {
  return err instanceof ProxyError;
}
