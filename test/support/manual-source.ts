// A RouteWatcher the test drives: it holds a state and tells its listeners of each new one, with the
// time the change was "observed" (now unless the test gives one), as a real source's event would.
import type { FhirRoute, RefResolver } from '../../api/index.ts';
import type { ChangeListener, RouteWatcher, SourceState } from '../../controller/src/sources/index.ts';

/** Resolves nothing: no Secret, no file, Services trusted by name (as standalone does). */
export const NO_REFS: RefResolver = { file: () => undefined, secret: () => undefined, service: () => undefined };

export class ManualSource implements RouteWatcher {
  readonly description = 'manual test source';
  readonly #listeners: ChangeListener[] = [];
  current: SourceState;

  constructor(initial: SourceState | readonly FhirRoute[]) {
    this.current = 'routes' in initial ? initial : { routes: initial, refs: NO_REFS };
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  state(): SourceState {
    return this.current;
  }

  onChange(listener: ChangeListener): void {
    this.#listeners.push(listener);
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }

  /** Replaces the state and tells every listener, as observed at `atMs`. */
  observed(state: SourceState, atMs = performance.now()): void {
    this.current = state;
    for (const listener of this.#listeners) listener(atMs);
  }

  /** Replaces the routes, keeping the resolver. */
  set(routes: readonly FhirRoute[], atMs = performance.now()): void {
    this.observed({ routes, refs: this.current.refs }, atMs);
  }
}
