// What a response carries: the whole target table, or only what differs from the table the proxy
// has ACKed (routes whose fingerprint changed, destination ids that left its scope).

import type { Route } from '../../../api/discovery/index.ts';
import type { ScopedTable } from '../compile/index.ts';

export interface TableChange {
  fullSnapshot: boolean;
  /** "" for a full snapshot. */
  baseVersion: string;
  upserted: Route[];
  removed: string[];
}

export function fullSnapshotOf(target: ScopedTable): TableChange {
  return { fullSnapshot: true, baseVersion: '', upserted: [...target.entries.values()].map((e) => e.wire), removed: [] };
}

/** From `acked` to `target`; both in destination-id order, so upserts and removals are too. */
export function deltaBetween(acked: ScopedTable, target: ScopedTable): TableChange {
  const upserted: Route[] = [];
  for (const [destinationId, entry] of target.entries) {
    if (acked.entries.get(destinationId)?.fingerprint !== entry.fingerprint) upserted.push(entry.wire);
  }
  const removed = [...acked.entries.keys()].filter((destinationId) => !target.entries.has(destinationId));
  return { fullSnapshot: false, baseVersion: acked.version, upserted, removed };
}
