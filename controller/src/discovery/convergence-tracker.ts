// Measures convergence: from a route change seen by the source to every connected proxy having
// answered the table in force for its namespace. Changes that land before convergence count from the first.

import type { Translation } from '../compile/index.ts';
import type { ControllerMetrics } from '../telemetry/metrics.ts';
import type { ProxyRecord } from './proxy-registry.ts';

export interface ConvergenceTrackerOptions {
  translation: () => Translation | undefined;
  proxies: () => readonly ProxyRecord[];
  metrics: ControllerMetrics;
  nowMs?: () => number;
}

export class ConvergenceTracker {
  readonly #options: ConvergenceTrackerOptions;
  #pendingSinceMs: number | undefined;

  constructor(options: ConvergenceTrackerOptions) {
    this.#options = options;
  }

  /** A new translation is in force; `changeSeenAtMs` is when its first change was seen (undefined: none). */
  translated(changeSeenAtMs: number | undefined): void {
    if (changeSeenAtMs !== undefined) this.#pendingSinceMs ??= changeSeenAtMs;
    this.check();
  }

  /** Observes the convergence time once every connected proxy has answered its target. */
  check(): void {
    const since = this.#pendingSinceMs;
    const translation = this.#options.translation();
    if (since === undefined || translation === undefined) return;
    const proxies = this.#options.proxies();
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
    if (proxies.length > 0) this.#options.metrics.converged((this.#now() - since) / 1000);
  }

  #now(): number {
    return (this.#options.nowMs ?? (() => performance.now()))();
  }
}
