// Translates a source's state into what the rest of the controller serves: the verdict on every
// route and, computed on first use and cached, the table each namespace's proxies run. Pure, no I/O.
// Incremental: from the translation before, only what a change touches is compiled, scoped and encoded.

import { encodeRoute } from '../../../api/discovery/index.ts';
import {
  compileIncrementally,
  contentVersion,
  isExportedTo,
  routeFingerprint,
  type Compilation,
  type CompiledRoute,
  type FhirRoute,
  type RouteResult,
} from '../../../api/index.ts';
import type { SourceState } from '../sources/route-watcher.ts';
import type { ScopedTable, TableEntry } from './scoped-table.ts';

/**
 * One source state, translated. Immutable: a change in the source makes a new Translation, so a
 * stream holding an old table never sees it change under it.
 */
export class Translation {
  /** Increases with every translation of one store; lets logs and tests tell them apart. */
  readonly sequence: number;
  /** The routes compiled, in source order (shared with the source: never mutate). */
  readonly routes: readonly FhirRoute[];
  /** One per route, in the same order; a verdict that did not change is the same object as before. */
  readonly results: readonly RouteResult[];
  /** Version of the table of every accepted route, whatever its scope: changes when any route does. */
  readonly version: string;
  readonly #compilation: Compilation;
  /** Namespace tables made so far, and those of the translation before that this one's change left alone. */
  readonly #tables = new Map<string, ScopedTable>();

  constructor(state: SourceState, sequence: number, previous?: Translation) {
    this.sequence = sequence;
    // Compiled once per change; each namespace's table is a filter of this one.
    this.#compilation = compileIncrementally(state.routes, state.refs, previous === undefined ? undefined : previous.#compilation);
    this.routes = state.routes;
    this.results = this.#compilation.results;
    this.version = this.#compilation.snapshot.version;
    if (previous !== undefined) this.#keepUntouchedTables(previous);
  }

  /** The table proxies in `namespace` run: routes exported to it. */
  snapshotFor(namespace: string): ScopedTable {
    const cached = this.#tables.get(namespace);
    if (cached !== undefined) return cached;
    const routes = this.#compilation.snapshot.routes.filter((route) => isExportedTo(route, namespace));
    const entries = new Map<string, TableEntry>();
    for (const route of routes) entries.set(route.destinationId, entryOf(route));
    const table: ScopedTable = { namespace, version: contentVersion(routes), entries };
    this.#tables.set(namespace, table);
    return table;
  }

  /**
   * A namespace that no added, removed or changed route is exported to sees the same routes: it keeps
   * the same table object (so whatever is cached per table, like encoded bytes, stays good).
   */
  #keepUntouchedTables(previous: Translation): void {
    if (previous.#tables.size === 0) return;
    const touched = new Set<string>();
    const touch = (route: CompiledRoute): boolean => {
      if (route.exportTo.includes('*')) return true;
      for (const namespace of route.exportTo) touched.add(namespace);
      return false;
    };
    // Both in destination-id order, and compile keeps an unchanged route the same object.
    const before = previous.#compilation.snapshot.routes;
    const after = this.#compilation.snapshot.routes;
    let i = 0;
    let j = 0;
    while (i < before.length || j < after.length) {
      const a = before[i];
      const b = after[j];
      if (a !== undefined && a === b) {
        i++;
        j++;
        continue;
      }
      let all: boolean;
      if (b === undefined || (a !== undefined && a.destinationId < b.destinationId)) {
        all = touch(a as CompiledRoute);
        i++;
      } else if (a === undefined || b.destinationId < a.destinationId) {
        all = touch(b);
        j++;
      } else {
        all = touch(a) || touch(b);
        i++;
        j++;
      }
      if (all) return;
    }
    for (const [namespace, table] of previous.#tables) if (!touched.has(namespace)) this.#tables.set(namespace, table);
  }
}

export function translate(state: SourceState, sequence: number, previous?: Translation): Translation {
  return new Translation(state, sequence, previous);
}

// A compiled route is the same object while it does not change (compile keeps it), and the same in
// every scope it reaches: its wire form is made once, not once per namespace or translation.
const entries = new WeakMap<CompiledRoute, TableEntry>();

function entryOf(route: CompiledRoute): TableEntry {
  let entry = entries.get(route);
  if (entry === undefined) {
    entry = { route, wire: encodeRoute(route), fingerprint: routeFingerprint(route) };
    entries.set(route, entry);
  }
  return entry;
}
