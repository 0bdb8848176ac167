// The controller's Prometheus metrics. Labels are bounded: condition types, condition statuses,
// sync states, response kinds, stages and NACK reasons are fixed lists; no route or proxy names.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from '../../../runtime/metrics.ts';
import { nackReasonLabel } from '../../../api/discovery/index.ts';

export const SYNC_STATES = ['SYNCED', 'STALE', 'NACKED'] as const;
export type SyncState = (typeof SYNC_STATES)[number];
export type ResponseKind = 'full' | 'delta' | 'current';
export type ReconcileStage = 'source' | 'translate' | 'status';

export class ControllerMetrics {
  readonly registry = new Registry();
  readonly #pushDuration: Histogram<'kind' | 'result'>;
  readonly #responses: Counter<'kind'>;
  readonly #convergence: Histogram;
  readonly #changeToTable: Histogram;
  readonly #nacks: Counter<'reason'>;
  readonly #leader: Gauge;
  readonly #slowConsumers: Counter;
  readonly #reconcileErrors: Counter<'stage'>;
  #proxyCounts: () => Record<SyncState, number> = () => ({ SYNCED: 0, STALE: 0, NACKED: 0 });
  #routeCounts: () => Iterable<{ condition: string; status: string; routes: number }> = () => [];

  constructor(options: { defaultMetrics?: boolean } = {}) {
    // Standard names (process_*, nodejs_*), no prefix: stock Node.js dashboards and alerts work as they are.
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    // Both gauges are read at scrape time from what they count: no bookkeeping to drift from the truth.
    const routeCounts = (): Iterable<{ condition: string; status: string; routes: number }> => this.#routeCounts();
    new Gauge({
      name: 'fhirmesh_controller_routes',
      help: 'FhirRoutes by condition type (Accepted, ResolvedRefs, Programmed) and status (True, False, Unknown).',
      labelNames: ['condition', 'status'],
      registers: [this.registry],
      collect() {
        // A condition/status pair no route has any more must drop to nothing.
        this.reset();
        for (const { condition, status, routes } of routeCounts()) this.set({ condition, status }, routes);
      },
    });
    const counts = (): Record<SyncState, number> => this.#proxyCounts();
    new Gauge({
      name: 'fhirmesh_controller_connected_proxies',
      help: 'Proxies with an open discovery stream, by sync state (SYNCED, STALE, NACKED).',
      labelNames: ['sync_state'],
      registers: [this.registry],
      collect() {
        const byState = counts();
        for (const state of SYNC_STATES) this.set({ sync_state: state }, byState[state]);
      },
    });
    this.#pushDuration = new Histogram({
      name: 'fhirmesh_controller_push_duration_seconds',
      help: 'From a discovery response sent to its ACK or NACK (send, apply on the proxy, answer), by kind and result.',
      labelNames: ['kind', 'result'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });
    this.#responses = new Counter({
      name: 'fhirmesh_controller_responses_total',
      help: 'Discovery responses sent, by kind (full, delta, current).',
      labelNames: ['kind'],
      registers: [this.registry],
    });
    this.#convergence = new Histogram({
      name: 'fhirmesh_controller_convergence_seconds',
      help: 'From a route change first observed by the source (file or watch event) to the last proxy in its scope (those whose namespace\'s table changed) having answered the new table (ACK; a NACK counts as an answer and shows in fhirmesh_controller_nacks_total).',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [this.registry],
    });
    this.#changeToTable = new Histogram({
      name: 'fhirmesh_controller_change_to_table_seconds',
      help: 'From a route change first observed by the source to the new tables in force (read, batch window, compile): the controller\'s part of fhirmesh_controller_convergence_seconds; the rest is sending and the proxies\' answers.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });
    this.#nacks = new Counter({
      name: 'fhirmesh_controller_nacks_total',
      help: 'Discovery responses a proxy refused (NACK); it kept its previous table. By reason: FHIRMESH_TABLE_INVALID, FHIRMESH_DELTA_BASE_MISMATCH, FHIRMESH_NOT_CURRENT, unspecified (none sent), other.',
      labelNames: ['reason'],
      registers: [this.registry],
    });
    this.#leader = new Gauge({
      name: 'fhirmesh_controller_leader',
      help: '1 while this replica is the one that writes status (holds the leader Lease; a replica without --leader-elect, or standalone, always is), else 0.',
      registers: [this.registry],
    });
    this.#slowConsumers = new Counter({
      name: 'fhirmesh_controller_slow_consumer_disconnects_total',
      help: 'Streams closed with RESOURCE_EXHAUSTED because the proxy did not answer within the ACK deadline.',
      registers: [this.registry],
    });
    this.#reconcileErrors = new Counter({
      name: 'fhirmesh_controller_reconcile_errors_total',
      help: 'Failures while reading sources (refused files), translating routes or publishing status; the last good state stays.',
      labelNames: ['stage'],
      registers: [this.registry],
    });
  }

  /** Where the connected-proxies gauge reads its values at scrape time. */
  countProxiesWith(counts: () => Record<SyncState, number>): void {
    this.#proxyCounts = counts;
  }

  /** Where the routes-by-condition gauge reads its values at scrape time (the desired statuses). */
  countRoutesWith(counts: () => Iterable<{ condition: string; status: string; routes: number }>): void {
    this.#routeCounts = counts;
  }

  responseSent(kind: ResponseKind): void {
    this.#responses.inc({ kind });
  }

  responseAnswered(kind: ResponseKind, result: 'ack' | 'nack', seconds: number, nackReason = ''): void {
    this.#pushDuration.observe({ kind, result }, seconds);
    if (result === 'nack') this.#nacks.inc({ reason: nackReasonLabel(nackReason) });
  }

  leading(isLeader: boolean): void {
    this.#leader.set(isLeader ? 1 : 0);
  }

  converged(seconds: number): void {
    this.#convergence.observe(seconds);
  }

  tableReplaced(secondsSinceChange: number): void {
    this.#changeToTable.observe(secondsSinceChange);
  }

  slowConsumerDisconnected(): void {
    this.#slowConsumers.inc();
  }

  reconcileFailed(stage: ReconcileStage): void {
    this.#reconcileErrors.inc({ stage });
  }
}
