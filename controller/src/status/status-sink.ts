// Where computed route statuses go: an interface, so the Kubernetes status writer (leader only,
// status subresource) can replace the in-memory sink that standalone mode shows on /debug/status.

import type { FhirRouteStatus } from '../../../api/index.ts';

/**
 * Receives each route's desired status when it changes. Calls must not block: a sink that writes
 * somewhere slow queues, deduplicates per key and retries on its own.
 */
export interface StatusSink {
  /** `key` is namespace/name. */
  publish(key: string, status: FhirRouteStatus): void;
  /** The route is gone: forget its status. */
  remove(key: string): void;
}

export class MemoryStatusSink implements StatusSink {
  readonly #statuses = new Map<string, FhirRouteStatus>();

  publish(key: string, status: FhirRouteStatus): void {
    this.#statuses.set(key, status);
  }

  remove(key: string): void {
    this.#statuses.delete(key);
  }

  get(key: string): FhirRouteStatus | undefined {
    return this.#statuses.get(key);
  }

  /** Every status, by key. */
  entries(): [string, FhirRouteStatus][] {
    return [...this.#statuses].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }
}
