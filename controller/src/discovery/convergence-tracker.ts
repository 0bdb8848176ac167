// Measures convergence: from a route change seen by the source to every connected proxy having
// answered the table in force for its namespace. Changes that land before convergence count from the first.

import type { Translation } from '../compile/index.ts';
import type { ControllerMetrics } from '../telemetry/metrics.ts';
import type { ProxyRegistry } from './proxy-registry.ts';
import type { SnapshotStore } from './snapshot-store.ts';

export class ConvergenceTracker {
  readonly #store: SnapshotStore;
  readonly #registry: ProxyRegistry;
  readonly #metrics: ControllerMetrics;
  #pendingSinceMs: number | undefined;

  constructor(store: SnapshotStore, registry: ProxyRegistry, metrics: ControllerMetrics) {
    this.#store = store;
    this.#registry = registry;
    this.#metrics = metrics;
    store.subscribe((_translation: Translation, changeSeenAtMs) => {
      if (changeSeenAtMs !== undefined) this.#pendingSinceMs ??= changeSeenAtMs;
      this.#check();
    });
    registry.onChange(() => this.#check());
  }

  #check(): void {
    const since = this.#pendingSinceMs;
    const translation = this.#store.current;
    if (since === undefined || translation === undefined) return;
    const proxies = this.#registry.list();
    // A proxy that NACKed its target has answered too: nothing more happens until the next change
    // (rule 5), so waiting for its ACK would stop the metric for every proxy until someone fixes it.
    // Its refusal shows in the NACK metrics and status instead.
    const settled = proxies.every((proxy) => {
      const target = translation.snapshotFor(proxy.namespace).version;
      return proxy.ackedVersion === target || proxy.nack?.version === target;
    });
    if (!settled) return;
    this.#pendingSinceMs = undefined;
    // With no proxy connected nothing converged: observing would record a time no proxy took.
    if (proxies.length > 0) this.#metrics.converged((performance.now() - since) / 1000);
  }
}
