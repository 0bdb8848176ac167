// Every response a stream can send, serialised once per (table) or (base version, table) and shared
// by every stream in scope: a reconnect wave of a namespace's proxies costs one encoding, not one each.

import { encodeSharedResponse } from '../../../api/discovery/index.ts';
import type { ScopedTable } from '../compile/index.ts';
import { deltaBetween, fullSnapshotOf, type TableChange } from './table-delta.ts';

/** A response without its nonce: the bytes every stream sends (ProxyStream appends the nonce). */
export interface SharedResponse {
  readonly kind: 'full' | 'delta' | 'current';
  readonly version: string;
  /** "" unless a delta. */
  readonly baseVersion: string;
  readonly upserted: number;
  readonly removed: number;
  /** The DiscoveryResponse without `nonce`; never written to (see encoded-response.ts). */
  readonly bytes: Buffer;
}

/** Deltas kept per target table: one per base version proxies in scope ACKed, so a few at most. */
const DELTAS_PER_TABLE = 8;
/** Namespaces whose latest full snapshot is kept by version (proxies may claim any namespace). */
const NAMESPACES_BY_VERSION = 1_024;

export class ResponseCache {
  // Keyed by the table object: it lives as long as a translation or an ACK holds it, and so do its
  // bytes. Compile keeps an unchanged namespace's ScopedTable identical across translations.
  readonly #full = new WeakMap<ScopedTable, SharedResponse>();
  readonly #current = new WeakMap<ScopedTable, SharedResponse>();
  readonly #deltas = new WeakMap<ScopedTable, Map<string, SharedResponse>>();
  // When a translation makes a new object for an unchanged table, its version still finds the bytes.
  readonly #fullByNamespace = new Map<string, SharedResponse>();
  #encodings = 0;

  /** How many responses were serialised so far: tests read it to see sharing. */
  get encodings(): number {
    return this.#encodings;
  }

  full(table: ScopedTable): SharedResponse {
    const known = this.#full.get(table);
    if (known !== undefined) return known;
    const byVersion = this.#fullByNamespace.get(table.namespace);
    const response = byVersion?.version === table.version ? byVersion : this.#encode('full', table, fullSnapshotOf(table));
    this.#full.set(table, response);
    this.#fullByNamespace.delete(table.namespace);
    if (this.#fullByNamespace.size >= NAMESPACES_BY_VERSION) this.#fullByNamespace.delete(this.#fullByNamespace.keys().next().value as string);
    this.#fullByNamespace.set(table.namespace, response);
    return response;
  }

  /** `current` = true at the table's version: nothing to apply. */
  current(table: ScopedTable): SharedResponse {
    const known = this.#current.get(table);
    if (known !== undefined) return known;
    const response = this.#encode('current', table, { fullSnapshot: false, baseVersion: '', upserted: [], removed: [] });
    this.#current.set(table, response);
    return response;
  }

  /** From the table a proxy ACKed to `target`. Versions are content hashes: equal base versions, equal deltas. */
  delta(acked: ScopedTable, target: ScopedTable): SharedResponse {
    let byBase = this.#deltas.get(target);
    if (byBase === undefined) {
      byBase = new Map();
      this.#deltas.set(target, byBase);
    }
    const known = byBase.get(acked.version);
    if (known !== undefined) return known;
    const response = this.#encode('delta', target, deltaBetween(acked, target));
    if (byBase.size >= DELTAS_PER_TABLE) byBase.delete(byBase.keys().next().value as string);
    byBase.set(acked.version, response);
    return response;
  }

  #encode(kind: SharedResponse['kind'], table: ScopedTable, change: TableChange): SharedResponse {
    this.#encodings++;
    const bytes = encodeSharedResponse({
      versionInfo: table.version,
      fullSnapshot: change.fullSnapshot,
      current: kind === 'current',
      baseVersion: change.baseVersion,
      upserted: change.upserted,
      removed: change.removed,
    });
    return { kind, version: table.version, baseVersion: change.baseVersion, upserted: change.upserted.length, removed: change.removed.length, bytes };
  }
}
