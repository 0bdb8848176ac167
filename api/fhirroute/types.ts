// The FhirRoute resource as app teams write it (spec types mirror crds/fhirroutes.fhirmesh.io.yaml,
// checked by test/unit/api/types-match-crd.test.ts) and the compiled form the proxy consumes.

export const API_GROUP = 'fhirmesh.io';
export const API_VERSION = 'fhirmesh.io/v1alpha1';
export const KIND = 'FhirRoute';

/** FHIR RESTful interactions the proxy derives from method + path (FHIR restful-interaction codes). */
export const FHIR_INTERACTIONS = [
  'read',
  'vread',
  'update',
  'patch',
  'delete',
  'history-instance',
  'history-type',
  'history-system',
  'create',
  'search-type',
  'search-system',
  'capabilities',
  // POST to the base: batch or transaction. Telling them apart needs Bundle.type from the body,
  // and the proxy never buffers a body, so both share this one interaction.
  'batch',
  'operation',
] as const;
export type FhirInteraction = (typeof FHIR_INTERACTIONS)[number];
/** What a request that is not a FHIR REST URL (bulk download files, poll URLs) is classified as. */
export type RequestInteraction = FhirInteraction | 'other';

/** Group names a rule may use for every level of an interaction. */
export const INTERACTION_GROUPS: Readonly<Record<string, readonly FhirInteraction[]>> = {
  history: ['history-instance', 'history-type', 'history-system'],
  search: ['search-type', 'search-system'],
};

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

// Named conditions rather than status codes: YAML 1.1 (kubectl, Helm) reads an unquoted 503 as a
// number, and the field is not called `on` because an unquoted `on:` key reads as `true`.
export const RETRY_ON = ['connect-failure', 'reset', 'bad-gateway', 'unavailable', 'gateway-timeout'] as const;
export type RetryOn = (typeof RETRY_ON)[number];

export interface ObjectMeta {
  name: string;
  namespace?: string;
  generation?: number;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface ServiceRef {
  name: string;
  /** Namespace of the Service; the route's own when absent. */
  namespace?: string;
  port: number;
  /** Base path of the FHIR service on that port, e.g. /fhir/r4. */
  path?: string;
  /** http (default) or https. */
  scheme?: 'http' | 'https';
}

export interface BackendTlsSpec {
  /** SNI and certificate name check; the URL's host when absent. */
  serverName?: string;
  /** Kubernetes Secret with ca.crt (controller resolves it). */
  caSecretRef?: string;
  /** kubernetes.io/tls Secret with tls.crt / tls.key presented to the backend. */
  clientCertSecretRef?: string;
  /** Standalone routes files: PEM files, relative to the routes file. */
  caFile?: string;
  clientCertFile?: string;
  clientKeyFile?: string;
}

export interface BackendSpec {
  url?: string;
  service?: ServiceRef;
  /** Set when the backend is another intermediary: sent to it as X-Destination. */
  nextHopDestination?: string;
  tls?: BackendTlsSpec;
}

export interface RuleMatchSpec {
  resourceTypes?: string[];
  /** FHIR interaction codes, or the groups `history` / `search`. */
  interactions?: string[];
  /** Operation names with their `$`, e.g. `$submit`. */
  operations?: string[];
  methods?: HttpMethod[];
}

export interface RuleSpec {
  name?: string;
  match: RuleMatchSpec;
  backend: BackendSpec;
}

export interface AddressingSpec {
  header?: boolean;
  pathSegment?: boolean;
  hosts?: string[];
  queryParameter?: boolean;
}

export interface FhirRouteSpec {
  destination: string;
  addressing: AddressingSpec;
  publicBaseUrl?: string;
  backend: BackendSpec;
  rules?: RuleSpec[];
  allow?: { methods?: HttpMethod[]; maxRequestBodyBytes?: number; encodedPathSeparators?: boolean };
  /** Durations as `250ms`, `2s`, `1m`. */
  timeouts?: { connect?: string; firstByte?: string; idle?: string };
  retries?: { attempts?: number; retryOn?: RetryOn[] };
  rewriteResponseUrls?: boolean;
  exportTo?: string[];
}

export interface Condition {
  type: 'Accepted' | 'ResolvedRefs' | 'Programmed';
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime?: string;
}

export interface FhirRouteStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  proxies?: { total: number; programmed: number };
}

export interface FhirRoute {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: ObjectMeta;
  spec: FhirRouteSpec;
  status?: FhirRouteStatus;
}

// ---- compiled form: what a proxy runs. Plain data (serialisable over gRPC and to disk). ----

export interface CompiledTls {
  serverName?: string;
  caPem?: string;
  certPem?: string;
  keyPem?: string;
}

export interface CompiledBackend {
  /** Absolute http(s) URL of the destination's FHIR base, no trailing slash. */
  baseUrl: string;
  nextHopDestination?: string;
  tls?: CompiledTls;
}

export interface CompiledRule {
  name: string;
  resourceTypes?: string[];
  interactions?: FhirInteraction[];
  operations?: string[];
  methods?: HttpMethod[];
  backend: CompiledBackend;
}

export interface RouteSource {
  namespace: string;
  name: string;
  generation: number;
}

export interface CompiledRoute {
  source: RouteSource;
  destinationId: string;
  addressing: { header: boolean; pathSegment: boolean; hosts: string[]; queryParameter: boolean };
  publicBaseUrl?: string;
  backend: CompiledBackend;
  rules: CompiledRule[];
  allowedMethods: HttpMethod[];
  maxRequestBodyBytes: number;
  /** `allow.encodedPathSeparators`: forward `%2F`/`%5C` inside a path segment. */
  allowEncodedPathSeparators: boolean;
  connectTimeoutMs: number;
  firstByteTimeoutMs: number;
  idleTimeoutMs: number;
  retryAttempts: number;
  retryOn: RetryOn[];
  rewriteResponseUrls: boolean;
  exportTo: string[];
}

export interface RouteTableSnapshot {
  /** Opaque version: a content hash of the routes, so an unchanged table keeps its version. */
  version: string;
  routes: CompiledRoute[];
}

export const DEFAULTS = {
  allowedMethods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as HttpMethod[],
  maxRequestBodyBytes: 10 * 1024 * 1024,
  connectTimeoutMs: 2_000,
  firstByteTimeoutMs: 30_000,
  idleTimeoutMs: 60_000,
  retryAttempts: 0,
  retryOn: ['connect-failure'] as RetryOn[],
} as const;
