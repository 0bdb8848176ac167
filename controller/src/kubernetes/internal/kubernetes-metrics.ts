// Metrics of Kubernetes mode, registered on the controller's registry: informer restarts, status
// writes, work-queue depth and retries, live proxy reports (leadership is in telemetry/metrics.ts, shared
// with standalone mode). Labels are fixed lists.

import { Counter, Gauge, type Registry } from '../../../../runtime/metrics.ts';

export type StatusWriteResult = 'written' | 'gone' | 'conflict' | 'retry' | 'refused';

export class KubernetesMetrics {
  readonly #restarts: Counter<'resource' | 'reason'>;
  readonly #writes: Counter<'result'>;
  readonly #queueDepth: Gauge;
  readonly #retries: Counter;
  readonly #reports: Gauge;

  constructor(registry: Registry) {
    this.#restarts = new Counter({
      name: 'fhirmesh_controller_informer_restarts_total',
      help: 'Informer restarts (fresh list and watch) by resource and reason: error, http-<status>, stalled.',
      labelNames: ['resource', 'reason'],
      registers: [registry],
    });
    this.#writes = new Counter({
      name: 'fhirmesh_controller_status_writes_total',
      help: 'FhirRoute status PATCHes by result: written, gone (404), conflict (409), retry (no answer, 429, 5xx), refused (other 4xx).',
      labelNames: ['result'],
      registers: [registry],
    });
    this.#queueDepth = new Gauge({
      name: 'fhirmesh_controller_status_queue_depth',
      help: 'Routes waiting for a status reconcile (ready or backing off).',
      registers: [registry],
    });
    this.#retries = new Counter({
      name: 'fhirmesh_controller_status_queue_retries_total',
      help: 'Status reconciles put back with per-route backoff after a failure.',
      registers: [registry],
    });
    this.#reports = new Gauge({
      name: 'fhirmesh_controller_replica_proxy_reports',
      help: 'Live proxy reports of other replicas counted into Programmed (leader only).',
      registers: [registry],
    });
  }

  informerRestarted(resource: string, reason: string): void {
    this.#restarts.inc({ resource, reason });
  }

  statusWrite(result: StatusWriteResult): void {
    this.#writes.inc({ result });
  }

  queueDepth(depth: number): void {
    this.#queueDepth.set(depth);
  }

  queueRetried(): void {
    this.#retries.inc();
  }

  liveReports(count: number): void {
    this.#reports.set(count);
  }
}
