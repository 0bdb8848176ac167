// The proxies route status counts, as views that do not care where a proxy is connected: this
// replica's registry, or another replica's report. A provider lists them, this replica's first.

import type { ScopedTable } from '../compile/index.ts';
import type { ProxyRecord } from '../discovery/index.ts';

/** A proxy as status counts it, whichever replica it is connected to. */
export interface ProxyView {
  nodeId: string;
  namespace: string;
  ackedVersion: string;
  /** namespace/name → generation in the table it runs; undefined before its first ACK. */
  running: ReadonlyMap<string, number> | undefined;
  nack?: { version: string; message: string; routes: ReadonlyMap<string, number> };
}

/**
 * Every proxy status should count, one list per place they are known, most trusted first: this
 * replica's live proxies, then other replicas' reports freshest first. A proxy in two lists (it moved
 * from a replica that died) counts once, as the first list has it.
 */
export type ProxyViews = () => readonly (readonly ProxyView[])[];

const generationsOf = new WeakMap<ScopedTable, ReadonlyMap<string, number>>();

/** namespace/name → generation of every route in a table, from the routes' sources (cached per table). */
export function routeGenerations(table: ScopedTable): ReadonlyMap<string, number> {
  let generations = generationsOf.get(table);
  if (generations === undefined) {
    const map = new Map<string, number>();
    for (const { route } of table.entries.values()) map.set(`${route.source.namespace}/${route.source.name}`, route.source.generation);
    generations = map;
    generationsOf.set(table, generations);
  }
  return generations;
}

export function viewsOfRecords(records: readonly ProxyRecord[]): ProxyView[] {
  return records.map((record) => ({
    nodeId: record.identity.nodeId,
    namespace: record.namespace,
    ackedVersion: record.ackedVersion,
    running: record.acked === undefined ? undefined : routeGenerations(record.acked),
    ...(record.nack === undefined ? {} : { nack: { version: record.nack.version, message: record.nack.message, routes: routeGenerations(record.nack.table) } }),
  }));
}
