// Proxy views folded for counting: each proxy once (the first list naming it wins), then grouped so
// that proxies in one namespace running one table, with the same NACK, are counted together.

import type { ProxyView } from '../proxy-views.ts';

/** Proxies that run the same table in the same namespace, counted together. */
export interface ProxyGroup {
  namespace: string;
  /** Version of the table these proxies ACKed; "" before any ACK. */
  ackedVersion: string;
  /** Sorted; one per proxy. */
  nodeIds: readonly string[];
  /** namespace/name → generation of each route in the table these proxies ACKed; undefined before any ACK. */
  running: ReadonlyMap<string, number> | undefined;
  /** Their last answer, when it refused a table: its version, their message and the generations it held. */
  nack?: { version: string; message: string; routes: ReadonlyMap<string, number> };
}

/**
 * Every proxy once: a proxy that moved from a replica that died to another one shows in both until
 * the dead replica's report expires. The first list wins (this replica's live proxies come first).
 */
export function mergeViews(lists: readonly (readonly ProxyView[])[]): ProxyView[] {
  const seen = new Set<string>();
  const merged: ProxyView[] = [];
  for (const views of lists) {
    for (const view of views) {
      const id = `${view.namespace}/${view.nodeId}`;
      if (seen.has(id)) continue;
      seen.add(id);
      merged.push(view);
    }
  }
  return merged;
}

/** Proxies with the same namespace, table and NACK affect every route alike: one group each, in a stable order. */
export function groupViews(views: readonly ProxyView[]): ProxyGroup[] {
  const groups = new Map<string, { group: ProxyGroup; nodeIds: string[] }>();
  for (const view of views) {
    const id = [view.namespace, view.ackedVersion, view.nack?.version ?? '', view.nack?.message ?? ''].join('\0');
    let entry = groups.get(id);
    if (entry === undefined) {
      const nodeIds: string[] = [];
      entry = {
        nodeIds,
        group: { namespace: view.namespace, ackedVersion: view.ackedVersion, nodeIds, running: view.running, ...(view.nack === undefined ? {} : { nack: view.nack }) },
      };
      groups.set(id, entry);
    }
    entry.nodeIds.push(view.nodeId);
  }
  for (const { nodeIds } of groups.values()) nodeIds.sort();
  return [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, entry]) => entry.group);
}

/**
 * Per namespace, a summary of what its groups say to route status: equal summaries, equal statuses
 * for every route exported there. A group's table is told by its version (a content hash, so one
 * version is one set of route generations), as groupViews already groups by it.
 */
export function namespaceSummaries(groups: readonly ProxyGroup[]): Map<string, string> {
  const parts = new Map<string, string[]>();
  for (const group of groups) {
    const summary = [group.running === undefined ? '-' : group.ackedVersion, group.nack?.version ?? '', group.nack?.message ?? '', group.nodeIds.join(',')].join('\0');
    const list = parts.get(group.namespace);
    if (list === undefined) parts.set(group.namespace, [summary]);
    else list.push(summary);
  }
  const summaries = new Map<string, string>();
  for (const [namespace, list] of parts) summaries.set(namespace, list.join('\u0001'));
  return summaries;
}
