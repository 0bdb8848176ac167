// Translates a source's state into what the rest of the controller serves: the verdict on every
// route and, computed on first use and cached, the table each namespace's proxies run. Pure, no I/O.

import { createHash } from 'node:crypto';
import { encodeRoute } from '../../../api/discovery/index.ts';
import { compileRoutes, scopeSnapshot, type CompiledRoute, type FhirRoute, type RouteResult, type RouteTableSnapshot } from '../../../api/index.ts';
import { canonicalJson } from '../../../runtime/index.ts';
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
  /** One per route, in the same order. */
  readonly results: readonly RouteResult[];
  /** Version of the table of every accepted route, whatever its scope: changes when any route does. */
  readonly version: string;
  readonly #all: RouteTableSnapshot;
  readonly #tables = new Map<string, ScopedTable>();
  // A destination id compiles to the same route in every scope it reaches, so its wire form and
  // fingerprint are made once per translation, not once per namespace.
  readonly #entries = new Map<string, TableEntry>();

  constructor(state: SourceState, sequence: number) {
    this.sequence = sequence;
    // Compiled once per change; each namespace's table is a filter of this one.
    const all = compileRoutes([...state.routes], state.refs);
    this.#all = all.snapshot;
    this.routes = state.routes;
    this.results = all.results;
    this.version = all.snapshot.version;
  }

  /** The table proxies in `namespace` run: routes exported to it. */
  snapshotFor(namespace: string): ScopedTable {
    const cached = this.#tables.get(namespace);
    if (cached !== undefined) return cached;
    const snapshot = scopeSnapshot(this.#all, namespace);
    const entries = new Map<string, TableEntry>();
    for (const route of snapshot.routes) entries.set(route.destinationId, this.#entryOf(route));
    const table: ScopedTable = { namespace, version: snapshot.version, entries };
    this.#tables.set(namespace, table);
    return table;
  }

  #entryOf(route: CompiledRoute): TableEntry {
    const cached = this.#entries.get(route.destinationId);
    if (cached !== undefined) return cached;
    const entry: TableEntry = { route, wire: encodeRoute(route), fingerprint: fingerprintOf(route) };
    this.#entries.set(route.destinationId, entry);
    return entry;
  }
}

export function translate(state: SourceState, sequence: number): Translation {
  return new Translation(state, sequence);
}

function fingerprintOf(route: CompiledRoute): string {
  return createHash('sha256').update(canonicalJson(route)).digest('hex');
}
