// Where the controller learns FhirRoutes and what they reference: a directory of YAML (standalone)
// or the Kubernetes API (informers). The compile and discovery layers see only this interface.
// (Not api/'s RouteSource, which names the FhirRoute a compiled route came from.)

import type { FhirRoute, RefResolver } from '../../../api/index.ts';
import type { Logger } from '../../../runtime/index.ts';

/** A consistent view of the inputs of compile: the routes and the resolver for their references. */
export interface SourceState {
  routes: readonly FhirRoute[];
  refs: RefResolver;
}

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
  /** Called after any change, possibly coalesced; listeners must not block or throw. */
  onChange(listener: () => void): void;
  stop(): Promise<void>;
}

/** Tells every listener of a watcher about a change; one that throws is logged and the rest still hear. */
export function notifyListeners(listeners: readonly (() => void)[], logger: Logger): void {
  for (const listener of listeners) {
    try {
      listener();
    } catch (err) {
      logger.log('error', 'route source listener threw', { error: String(err) });
    }
  }
}
