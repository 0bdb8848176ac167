// Measures convergence: from a route change first observed by the source (the file or watch event) to
// the last proxy in its scope, those whose namespace's table it changed, having answered the new table.
// Changes that land before convergence count from the first and add their scope; cheap per answer.

import type { Translation } from '../compile/index.ts';
import type { ControllerMetrics } from '../telemetry/metrics.ts';
import type { ProxyRecord } from './proxy-registry.ts';

export interface ConvergenceTrackerOptions {
  translation: () => Translation | undefined;
  /** The proxies connected now; read once per translation, never per answer. */
  proxies: () => Iterable<ProxyRecord>;
  /** Whether a proxy's stream is still open: a proxy that went away has nothing left to answer. */
  connected: (proxy: ProxyRecord) => boolean;
  metrics: ControllerMetrics;
  nowMs?: () => number;
}

export class ConvergenceTracker {
  readonly #options: ConvergenceTrackerOptions;
  #pendingSinceMs: number | undefined;
  /** Proxies in scope of the pending changes that had not answered when last looked at, oldest scope first. */
  readonly #outstanding = new Set<ProxyRecord>();

  constructor(options: ConvergenceTrackerOptions) {
    this.#options = options;
  }

  /**
   * A new translation is in force; `changeSeenAtMs` is when the source observed its first change
   * (undefined: none), `previous` the translation it replaces. Its scope: every connected proxy
   * whose namespace's table version differs between the two. A change no connected proxy is in
   * the scope of converges at once and is not observed (no proxy waited for it).
   */
  translated(translation: Translation, changeSeenAtMs: number | undefined, previous: Translation | undefined): void {
    if (changeSeenAtMs !== undefined) {
      const changed = new Map<string, boolean>();
      for (const proxy of this.#options.proxies()) {
        let inScope = changed.get(proxy.namespace);
        if (inScope === undefined) {
          inScope = previous === undefined || previous.snapshotFor(proxy.namespace).version !== translation.snapshotFor(proxy.namespace).version;
          changed.set(proxy.namespace, inScope);
        }
        if (inScope) this.#outstanding.add(proxy);
      }
      if (this.#outstanding.size > 0) this.#pendingSinceMs ??= changeSeenAtMs;
    }
    this.check();
  }

  /**
   * Observes the convergence time once every proxy in scope has answered its target. Called on every
   * answer, so it looks only at the oldest outstanding proxies: those that answered are dropped, and
   * it stops at the first that has not (each proxy is dropped once: linear in answers, not quadratic).
   */
  check(): void {
    const since = this.#pendingSinceMs;
    const translation = this.#options.translation();
    if (since === undefined || translation === undefined) return;
    for (const proxy of this.#outstanding) {
      if (this.#options.connected(proxy) && !answered(proxy, translation)) return;
      this.#outstanding.delete(proxy);
    }
    this.#pendingSinceMs = undefined;
    this.#options.metrics.converged((this.#now() - since) / 1000);
  }

  /** Proxies in scope still to answer (for tests and /debug). */
  get outstanding(): number {
    return this.#outstanding.size;
  }

  #now(): number {
    return (this.#options.nowMs ?? (() => performance.now()))();
  }
}

/**
 * A proxy that NACKed its target has answered too: nothing more happens until the next change
 * (rule 5), so waiting for its ACK would stop the metric for every proxy until someone fixes it.
 * Its refusal shows in the NACK metrics and status instead.
 */
function answered(proxy: ProxyRecord, translation: Translation): boolean {
  const target = translation.snapshotFor(proxy.namespace).version;
  return proxy.ackedVersion === target || proxy.nack?.version === target;
}
