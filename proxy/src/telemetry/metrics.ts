// The proxy's Prometheus metrics. Every label value is bounded: destinations and rules come from the
// table, methods, interactions, error codes and retry reasons from fixed lists, resource types from
// the R4 list, status codes are three digits; never request text. A new metric is one entry here.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from '../../../runtime/metrics.ts';
import type { ProxyErrorCode } from '../errors.ts';
import { FHIR_R4_RESOURCE_TYPES } from './fhir-resource-types.ts';

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/**
 * Placeholders are in parentheses, which no destination id or rule name (DNS labels) can contain:
 * a real destination called `unknown` or a rule called `default` never shares their series.
 */
export const UNKNOWN_DESTINATION = '(unknown)';
export const ROUTE_BACKEND = '(default)';

/** Why an upstream attempt was made again: a route's `retryOn` condition, or the pool's stale-socket race. */
export type RetryReason = 'connect-failure' | 'reset' | 'bad-gateway' | 'unavailable' | 'gateway-timeout' | 'stale-socket';

export interface RequestLabels {
  destination: string;
  /** The rule whose backend served the request, or ROUTE_BACKEND for the route's own backend. */
  rule: string;
  method: string;
  interaction: string;
  resourceType: string | undefined;
  status: number;
  origin: 'intermediary' | 'destination';
  /** The intermediary's error code when it answered (or cut) the request itself. */
  errorCode: ProxyErrorCode | undefined;
}

/** Upstream connection pool use for one backend origin, read at scrape time. */
export interface PoolUsage {
  backend: string;
  active: number;
  idle: number;
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class ProxyMetrics {
  readonly registry = new Registry();
  readonly #requests: Counter<'destination' | 'rule' | 'method' | 'interaction' | 'resource_type' | 'status' | 'status_class' | 'origin' | 'error_code'>;
  readonly #duration: Histogram<'destination' | 'rule' | 'interaction' | 'status_class' | 'origin'>;
  readonly #connect: Histogram<'destination' | 'rule'>;
  readonly #firstByte: Histogram<'destination' | 'rule'>;
  readonly #retries: Counter<'destination' | 'rule' | 'reason'>;
  readonly #aborted: Counter<'destination'>;
  readonly #inFlight: Gauge;
  readonly #tableRoutes: Gauge;
  readonly #tableLoaded: Gauge;
  readonly #tableInfo: Gauge<'version'>;
  readonly #reloadFailures: Counter;
  readonly #discoveryConnected: Gauge;
  #poolUsage: () => Iterable<PoolUsage> = () => [];
  #staleSeconds: () => number = () => 0;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    // Standard names (process_*, nodejs_*), no prefix: stock Node.js dashboards and alerts work as they are.
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.#requests = new Counter({
      name: 'fhirmesh_proxy_requests_total',
      help: 'Requests handled, by destination, rule (the backend that served it), method, FHIR interaction, resource type, exact status, status class, origin of the answer (intermediary or destination) and the intermediary error code (empty when the destination answered).',
      labelNames: ['destination', 'rule', 'method', 'interaction', 'resource_type', 'status', 'status_class', 'origin', 'error_code'],
      registers: [this.registry],
    });
    this.#duration = new Histogram({
      name: 'fhirmesh_proxy_request_duration_seconds',
      help: 'Time from request received to response finished.',
      labelNames: ['destination', 'rule', 'interaction', 'status_class', 'origin'],
      buckets: LATENCY_BUCKETS,
      registers: [this.registry],
    });
    this.#connect = new Histogram({
      name: 'fhirmesh_proxy_upstream_connect_duration_seconds',
      help: 'Time to open a new connection (TCP, and TLS where used) to the next hop; reused pooled connections are not observed.',
      labelNames: ['destination', 'rule'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [this.registry],
    });
    this.#firstByte = new Histogram({
      name: 'fhirmesh_proxy_upstream_first_byte_duration_seconds',
      help: 'Per upstream attempt: from the attempt started (connection included when a new one is opened) to the response head received.',
      labelNames: ['destination', 'rule'],
      buckets: LATENCY_BUCKETS,
      registers: [this.registry],
    });
    this.#retries = new Counter({
      name: 'fhirmesh_proxy_upstream_retries_total',
      help: 'Upstream attempts made again, by the reason the previous one failed: a retryOn condition (connect-failure, reset, bad-gateway, unavailable, gateway-timeout) or stale-socket (a pooled connection the next hop had just closed).',
      labelNames: ['destination', 'rule', 'reason'],
      registers: [this.registry],
    });
    this.#aborted = new Counter({
      name: 'fhirmesh_proxy_aborted_responses_total',
      help: 'Responses cut off after they had started (upstream failed mid-body or the originator left).',
      labelNames: ['destination'],
      registers: [this.registry],
    });
    this.#inFlight = new Gauge({ name: 'fhirmesh_proxy_requests_in_flight', help: 'Requests received and not yet finished.', registers: [this.registry] });
    const poolUsage = (): Iterable<PoolUsage> => this.#poolUsage();
    new Gauge({
      name: 'fhirmesh_proxy_upstream_sockets',
      help: 'Upstream connections per backend origin: active (carrying an exchange) or idle (pooled, kept alive).',
      labelNames: ['backend', 'state'],
      registers: [this.registry],
      collect() {
        // A backend no table names any more drops out.
        this.reset();
        for (const { backend, active, idle } of poolUsage()) {
          this.set({ backend, state: 'active' }, active);
          this.set({ backend, state: 'idle' }, idle);
        }
      },
    });
    this.#tableRoutes = new Gauge({ name: 'fhirmesh_proxy_table_routes', help: 'Routes in the table in force.', registers: [this.registry] });
    this.#tableLoaded = new Gauge({
      name: 'fhirmesh_proxy_table_loaded_timestamp_seconds',
      help: 'When the table in force was loaded (Unix time); its age is time() minus this.',
      registers: [this.registry],
    });
    this.#tableInfo = new Gauge({
      name: 'fhirmesh_proxy_table_info',
      help: 'Always 1; the version label is the version of the table in force (a content hash).',
      labelNames: ['version'],
      registers: [this.registry],
    });
    const staleSeconds = (): number => this.#staleSeconds();
    new Gauge({
      name: 'fhirmesh_proxy_table_stale_seconds',
      help: 'Seconds since this proxy last knew its table to be the current one: 0 while its source is in touch (the discovery stream up with the last response applied, or the routes file read and accepted); it grows while the controller is unreachable or a new table was refused.',
      registers: [this.registry],
      collect() {
        this.set(staleSeconds());
      },
    });
    this.#reloadFailures = new Counter({
      name: 'fhirmesh_proxy_table_rejected_total',
      help: 'New tables refused (invalid routes file, or a pushed table NACKed); the previous table stayed in force.',
      registers: [this.registry],
    });
    this.#discoveryConnected = new Gauge({
      name: 'fhirmesh_proxy_discovery_connected',
      help: '1 while the route-discovery stream to the controller is up (controller mode only).',
      registers: [this.registry],
    });
  }

  /** Where the upstream-sockets gauge reads pool use at scrape time (the forwarding engine's pools). */
  countSocketsWith(usage: () => Iterable<PoolUsage>): void {
    this.#poolUsage = usage;
  }

  /** Where the table-stale gauge reads its value at scrape time (the table holder). */
  measureStalenessWith(seconds: () => number): void {
    this.#staleSeconds = seconds;
  }

  discoveryConnected(connected: boolean): void {
    this.#discoveryConnected.set(connected ? 1 : 0);
  }

  requestStarted(): void {
    this.#inFlight.inc();
  }

  requestFinished(labels: RequestLabels, seconds: number): void {
    this.#inFlight.dec();
    this.requestRefused(labels, seconds);
  }

  /** A request counted without having been in flight (refused by the HTTP parser). */
  requestRefused(labels: RequestLabels, seconds: number): void {
    const statusClass = `${Math.floor(labels.status / 100)}xx`;
    const method = KNOWN_METHODS.has(labels.method) ? labels.method : 'OTHER';
    const resourceType =
      labels.resourceType === undefined ? 'none' : FHIR_R4_RESOURCE_TYPES.has(labels.resourceType) ? labels.resourceType : 'other';
    this.#requests.inc({
      destination: labels.destination,
      rule: labels.rule,
      method,
      interaction: labels.interaction,
      resource_type: resourceType,
      status: String(labels.status),
      status_class: statusClass,
      origin: labels.origin,
      error_code: labels.errorCode ?? '',
    });
    this.#duration.observe({ destination: labels.destination, rule: labels.rule, interaction: labels.interaction, status_class: statusClass, origin: labels.origin }, seconds);
  }

  upstreamConnected(destination: string, rule: string, seconds: number): void {
    this.#connect.observe({ destination, rule }, seconds);
  }

  upstreamFirstByte(destination: string, rule: string, seconds: number): void {
    this.#firstByte.observe({ destination, rule }, seconds);
  }

  upstreamRetried(destination: string, rule: string, reason: RetryReason): void {
    this.#retries.inc({ destination, rule, reason });
  }

  responseAborted(destination: string): void {
    this.#aborted.inc({ destination });
  }

  tableLoaded(routes: number, at: Date, version: string): void {
    this.#tableRoutes.set(routes);
    this.#tableLoaded.set(at.getTime() / 1000);
    this.#tableInfo.reset();
    this.#tableInfo.set({ version }, 1);
  }

  tableRejected(): void {
    this.#reloadFailures.inc();
  }
}
