// Translates a source's state into what the rest of the controller serves: the verdict on every
// route and, computed on first use and cached, the table each namespace's proxies run. Pure, no I/O.
// Incremental: from the translation before, only what a change touches is compiled, scoped and encoded.

import { encodeRoute } from '../../../api/discovery/index.ts';
import {
  compileIncrementally,
  isExportedTo,
  routeFingerprint,
  versionOfFingerprints,
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
  /** Tables of the translation before that a change touched: the start of this one's. */
  readonly #bases = new Map<string, ScopedTable>();
  /** What changed since the translation before, in destination-id order. */
  readonly #changes: RouteChange[] = [];

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
    const base = this.#bases.get(namespace);
    const entries = base === undefined ? this.#entriesFor(namespace) : patched(base, this.#changes, namespace);
    this.#bases.delete(namespace);
    const table: ScopedTable = { namespace, version: versionOfFingerprints([...entries.values()].map((entry) => entry.fingerprint)), entries };
    this.#tables.set(namespace, table);
    return table;
  }

  #entriesFor(namespace: string): Map<string, TableEntry> {
    const entries = new Map<string, TableEntry>();
    for (const route of this.#compilation.snapshot.routes) if (isExportedTo(route, namespace)) entries.set(route.destinationId, entryOf(route));
    return entries;
  }

  /**
   * A namespace that no added, removed or changed route is exported to sees the same routes: it keeps
   * the same table object (so whatever is cached per table, like encoded bytes, stays good). The
   * others are made on first use from the table before, patched with what changed.
   */
  #keepUntouchedTables(previous: Translation): void {
    if (previous.#tables.size === 0) return;
    const touched = new Set<string>();
    let all = false;
    const touch = (route: CompiledRoute): void => {
      if (route.exportTo.includes('*')) all = true;
      for (const namespace of route.exportTo) touched.add(namespace);
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
      } else if (b === undefined || (a !== undefined && a.destinationId < b.destinationId)) {
        touch(a as CompiledRoute);
        this.#changes.push({ destinationId: (a as CompiledRoute).destinationId, route: undefined });
        i++;
      } else if (a === undefined || b.destinationId < a.destinationId) {
        touch(b);
        this.#changes.push({ destinationId: b.destinationId, route: b });
        j++;
      } else {
        touch(a);
        touch(b);
        this.#changes.push({ destinationId: b.destinationId, route: b });
        i++;
        j++;
      }
    }
    for (const [namespace, table] of previous.#tables) {
      if (!all && !touched.has(namespace)) this.#tables.set(namespace, table);
      else this.#bases.set(namespace, table);
    }
  }
}

/** A route that is new, changed or gone (route undefined) since the translation before. */
interface RouteChange {
  destinationId: string;
  route: CompiledRoute | undefined;
}

/** `base`'s entries with `changes` applied as `namespace` sees them; both in destination-id order. */
function patched(base: ScopedTable, changes: readonly RouteChange[], namespace: string): Map<string, TableEntry> {
  const entries = new Map<string, TableEntry>();
  let next = 0;
  const applyUpTo = (destinationId: string | undefined): void => {
    for (; next < changes.length; next++) {
      const change = changes[next] as RouteChange;
      if (destinationId !== undefined && change.destinationId >= destinationId) return;
      if (change.route !== undefined && isExportedTo(change.route, namespace)) entries.set(change.destinationId, entryOf(change.route));
    }
  };
  for (const [destinationId, entry] of base.entries) {
    applyUpTo(destinationId);
    // A change of this very route replaces (or removes) it.
    if (changes[next]?.destinationId === destinationId) continue;
    entries.set(destinationId, entry);
  }
  applyUpTo(undefined);
  return entries;
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
