// The proxy's own limits on what an originator may send, with the defaults a sidecar in front of
// clinical systems starts with; each is a flag (and FHIRMESH_* variable) in config/flags.ts.

export interface ProxyLimits {
  /** Request line plus headers, in bytes (Node's maxHeaderSize); more → 431 (or 414 for the URL). */
  maxHeaderBytes: number;
  /** Header fields per request; more → 431. */
  maxHeaderCount: number;
  /** Request target length in bytes; longer → 414. */
  maxUrlBytes: number;
  /** Time to receive a request's head (slow-header clients); then 408 and close. */
  headersTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** Requests in flight per destination through this proxy; more → 503 with Retry-After. */
  maxConcurrentPerDestination: number;
}

export const DEFAULT_LIMITS: ProxyLimits = {
  maxHeaderBytes: 16 * 1024,
  maxHeaderCount: 100,
  maxUrlBytes: 8 * 1024,
  headersTimeoutMs: 30_000,
  keepAliveTimeoutMs: 65_000,
  maxConcurrentPerDestination: 1024,
};

/** flag name, environment variable, field, unit: the flags parser reads each the same way. */
export const LIMIT_FLAGS = [
  ['max-header-bytes', 'FHIRMESH_MAX_HEADER_BYTES', 'maxHeaderBytes', 'bytes'],
  ['max-headers', 'FHIRMESH_MAX_HEADERS', 'maxHeaderCount', 'count'],
  ['max-url-bytes', 'FHIRMESH_MAX_URL_BYTES', 'maxUrlBytes', 'bytes'],
  ['headers-timeout', 'FHIRMESH_HEADERS_TIMEOUT', 'headersTimeoutMs', 'seconds'],
  ['keep-alive-timeout', 'FHIRMESH_KEEP_ALIVE_TIMEOUT', 'keepAliveTimeoutMs', 'seconds'],
  ['max-concurrent-per-destination', 'FHIRMESH_MAX_CONCURRENT_PER_DESTINATION', 'maxConcurrentPerDestination', 'count'],
] as const satisfies readonly (readonly [string, string, keyof ProxyLimits, 'bytes' | 'count' | 'seconds'])[];
