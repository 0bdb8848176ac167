// The proxy's Prometheus metrics. Every label value is bounded: destinations come from the table,
// methods and interactions from fixed lists, resource types from the R4 list; never request text.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { FHIR_R4_RESOURCE_TYPES } from './fhir-resource-types.ts';

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

export interface RequestLabels {
  destination: string;
  method: string;
  interaction: string;
  resourceType: string | undefined;
  status: number;
  origin: 'intermediary' | 'destination';
}

export class ProxyMetrics {
  readonly registry = new Registry();
  readonly #requests: Counter<'destination' | 'method' | 'interaction' | 'resource_type' | 'status_class' | 'origin'>;
  readonly #duration: Histogram<'destination' | 'interaction' | 'status_class'>;
  readonly #aborted: Counter<'destination'>;
  readonly #active: Gauge;
  readonly #tableRoutes: Gauge;
  readonly #tableLoaded: Gauge;
  readonly #reloadFailures: Counter;
  readonly #discoveryConnected: Gauge;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'fhirmesh_proxy_' });
    this.#requests = new Counter({
      name: 'fhirmesh_proxy_requests_total',
      help: 'Requests handled, by destination, method, FHIR interaction, resource type, status class and error origin.',
      labelNames: ['destination', 'method', 'interaction', 'resource_type', 'status_class', 'origin'],
      registers: [this.registry],
    });
    this.#duration = new Histogram({
      name: 'fhirmesh_proxy_request_duration_seconds',
      help: 'Time from request received to response finished.',
      labelNames: ['destination', 'interaction', 'status_class'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [this.registry],
    });
    this.#aborted = new Counter({
      name: 'fhirmesh_proxy_aborted_responses_total',
      help: 'Responses cut off after they had started (upstream failed mid-body or the originator left).',
      labelNames: ['destination'],
      registers: [this.registry],
    });
    this.#active = new Gauge({ name: 'fhirmesh_proxy_active_requests', help: 'Requests in flight.', registers: [this.registry] });
    this.#tableRoutes = new Gauge({ name: 'fhirmesh_proxy_table_routes', help: 'Routes in the table in force.', registers: [this.registry] });
    this.#tableLoaded = new Gauge({
      name: 'fhirmesh_proxy_table_loaded_timestamp_seconds',
      help: 'When the table in force was loaded (Unix time); its age is time() minus this.',
      registers: [this.registry],
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

  discoveryConnected(connected: boolean): void {
    this.#discoveryConnected.set(connected ? 1 : 0);
  }

  requestStarted(): void {
    this.#active.inc();
  }

  requestFinished(labels: RequestLabels, seconds: number): void {
    this.#active.dec();
    const statusClass = `${Math.floor(labels.status / 100)}xx`;
    const method = KNOWN_METHODS.has(labels.method) ? labels.method : 'OTHER';
    const resourceType =
      labels.resourceType === undefined ? 'none' : FHIR_R4_RESOURCE_TYPES.has(labels.resourceType) ? labels.resourceType : 'other';
    this.#requests.inc({
      destination: labels.destination,
      method,
      interaction: labels.interaction,
      resource_type: resourceType,
      status_class: statusClass,
      origin: labels.origin,
    });
    this.#duration.observe({ destination: labels.destination, interaction: labels.interaction, status_class: statusClass }, seconds);
  }

  responseAborted(destination: string): void {
    this.#aborted.inc({ destination });
  }

  tableLoaded(routes: number, at: Date): void {
    this.#tableRoutes.set(routes);
    this.#tableLoaded.set(at.getTime() / 1000);
  }

  tableRejected(): void {
    this.#reloadFailures.inc();
  }
}
