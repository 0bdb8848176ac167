// Where the controller learns FhirRoutes and what they reference: a directory of YAML (standalone)
// or the Kubernetes API (informers). The compile and discovery layers see only this interface.
// (Not api/'s RouteSource, which names the FhirRoute a compiled route came from.)

import type { FhirRoute, RefResolver } from '../../../api/index.ts';
import type { Logger } from '../../../runtime/index.ts';

/** A consistent view of the inputs of compile: the routes and the resolver for their references. */
export interface SourceState {
  /**
   * A route that did not change keeps its object from one state to the next (compile caches by
   * identity); a changed one, or one whose referenced files changed, is a new object.
   */
  routes: readonly FhirRoute[];
  refs: RefResolver;
}

/**
 * Told of a change; `observedAtMs` is performance.now() when the source first saw it (the file
 * event's or the watch event's arrival, the poll's detection), before any read or debounce, so
 * convergence counts from there.
 */
export type ChangeListener = (observedAtMs: number) => void;

export interface RouteWatcher {
  /** Human-readable kind for logs: `directory /etc/routes`, `kubernetes (all namespaces)`. */
  readonly description: string;
  /**
   * Resolves after the first complete read. The discovery server answers no proxy before this:
   * a table built from a source that has not been read yet would wipe every proxy.
   */
  start(): Promise<void>;
  /** The current state; cheap, and never blocks. Objects are shared: callers must not mutate them. */
  state(): SourceState;
  /** Called after any change, possibly coalesced (then with the earliest observation); listeners must not block or throw. */
  onChange(listener: ChangeListener): void;
  stop(): Promise<void>;
}

/** Tells every listener of a watcher about a change; one that throws is logged and the rest still hear. */
export function notifyListeners(listeners: readonly ChangeListener[], observedAtMs: number, logger: Logger): void {
  for (const listener of listeners) {
    try {
      listener(observedAtMs);
    } catch (err) {
      logger.log('error', 'route source listener threw', { error: String(err) });
    }
  }
}
