// Keeps the desired statuses current: any change (a new translation, a proxy's ACK or NACK, another
// replica's report) schedules one refresh soon, and the keys it changed go to the sink. Nothing else.

import type { Logger } from '../../../runtime/index.ts';
import type { ChangeRef, ChangeTracer } from '../telemetry/change-tracer.ts';
import type { ControllerMetrics } from '../telemetry/metrics.ts';
import type { DesiredStatuses, StatusChanges } from './desired-status.ts';
import type { StatusSink } from './status-sink.ts';

export interface StatusReconcilerOptions {
  statuses: DesiredStatuses;
  /** Absent in standalone mode: the statuses are only read (/debug/status, metrics). */
  sink?: StatusSink;
  logger: Logger;
  metrics?: ControllerMetrics;
  /** Events within this delay are reconciled once (a rollout ACKs in bursts). Default 100 ms. */
  delayMs?: number;
  /** A span per refresh, linked to the change in force. */
  tracer?: ChangeTracer;
  cause?: () => ChangeRef | undefined;
}

export class StatusReconciler {
  readonly #options: StatusReconcilerOptions;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: StatusReconcilerOptions) {
    this.#options = options;
  }

  /** Asks for a reconcile soon; many asks make one. Never blocks. */
  schedule(): void {
    if (this.#stopped || this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      try {
        this.reconcile();
      } catch (err) {
        this.#options.metrics?.reconcileFailed('status');
        this.#options.logger.log('error', 'status reconcile failed', { error: String(err) });
      }
    }, this.#options.delayMs ?? 100);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  /** Refreshes every desired status and enqueues the keys that changed or went. Safe to run twice. */
  reconcile(): StatusChanges {
    const span = this.#options.tracer?.status(this.#options.cause?.(), 'reconcile');
    const changes = this.#options.statuses.refresh();
    for (const key of [...changes.changed, ...changes.removed]) this.#options.sink?.enqueue(key);
    span?.end(changes.changed.length + changes.removed.length > 0 ? 'changed' : 'unchanged', { changed: String(changes.changed.length), removed: String(changes.removed.length) });
    return changes;
  }
}
