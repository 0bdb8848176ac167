// Brings every route's published status in line with the current translation and what the
// connected proxies run; writes only statuses that changed. Events only schedule it; it reads state.

import type { FhirRouteStatus } from '../../../api/index.ts';
import type { ScopedTable, Translation } from '../compile/index.ts';
import { canonicalJson } from '../internal/canonical-json.ts';
import type { ProxyRecord } from '../discovery/index.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { ControllerMetrics } from '../telemetry/metrics.ts';
import { computeRouteStatus, type ProxyGroup } from './route-status.ts';
import type { StatusSink } from './status-sink.ts';

export interface StatusReconcilerOptions {
  sink: StatusSink;
  translation: () => Translation | undefined;
  proxies: () => readonly ProxyRecord[];
  logger: Logger;
  metrics?: ControllerMetrics;
  now?: () => Date;
  /** Events within this delay are reconciled once (a rollout ACKs in bursts). Default 100 ms. */
  delayMs?: number;
}

export interface StatusWrites {
  published: { key: string; status: FhirRouteStatus }[];
  removed: string[];
}

export class StatusReconciler {
  readonly #options: StatusReconcilerOptions;
  readonly #published = new Map<string, FhirRouteStatus>();
  readonly #runningOf = new WeakMap<ScopedTable, ReadonlyMap<string, number>>();
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: StatusReconcilerOptions) {
    this.#options = options;
  }

  /** Asks for a reconcile soon; many asks make one. Never blocks. */
  schedule(): void {
    if (this.#stopped || this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      try {
        this.reconcile();
      } catch (err) {
        this.#options.metrics?.reconcileFailed('status');
        this.#options.logger.log('error', 'status reconcile failed', { error: String(err) });
      }
    }, this.#options.delayMs ?? 100);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  /** The statuses last published, by key: what the sink was told, whatever kind of sink it is. */
  published(): [string, FhirRouteStatus][] {
    return [...this.#published].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** Safe to run any time, any number of times: the same state writes nothing new. */
  reconcile(): StatusWrites {
    const writes: StatusWrites = { published: [], removed: [] };
    const translation = this.#options.translation();
    if (translation === undefined) return writes;
    const now = (this.#options.now ?? (() => new Date()))();
    const groups = this.#groups(this.#options.proxies());
    const seen = new Set<string>();
    translation.routes.forEach((route, index) => {
      const result = translation.results[index];
      // A key given twice: the first is the object; compile marks the copy Conflicted.
      if (result === undefined || seen.has(result.key)) return;
      seen.add(result.key);
      const last = this.#published.get(result.key);
      const status = computeRouteStatus({ route, result, proxies: groups, previous: last ?? route.status, now });
      if (last !== undefined && canonicalJson(last) === canonicalJson(status)) return;
      this.#published.set(result.key, status);
      this.#options.sink.publish(result.key, status);
      writes.published.push({ key: result.key, status });
    });
    for (const key of [...this.#published.keys()]) {
      if (seen.has(key)) continue;
      this.#published.delete(key);
      this.#options.sink.remove(key);
      writes.removed.push(key);
    }
    this.#options.metrics?.routesByCondition(this.#conditionCounts());
    return writes;
  }

  /** Proxies with the same namespace, table and NACK affect every route alike: one group each. */
  #groups(proxies: readonly ProxyRecord[]): ProxyGroup[] {
    const groups = new Map<string, { group: ProxyGroup; nodeIds: string[] }>();
    for (const proxy of proxies) {
      const nack = proxy.nack;
      const id = [proxy.namespace, proxy.ackedVersion, nack?.version ?? '', nack?.message ?? ''].join('\0');
      let entry = groups.get(id);
      if (entry === undefined) {
        const nodeIds: string[] = [];
        const group: ProxyGroup = {
          namespace: proxy.namespace,
          nodeIds,
          running: proxy.acked === undefined ? undefined : this.#running(proxy.acked),
          ...(nack === undefined ? {} : { nack: { version: nack.version, message: nack.message, routes: this.#running(nack.table) } }),
        };
        entry = { group, nodeIds };
        groups.set(id, entry);
      }
      entry.nodeIds.push(proxy.identity.nodeId);
    }
    for (const { nodeIds } of groups.values()) nodeIds.sort();
    return [...groups.values()].map((entry) => entry.group);
  }

  /** namespace/name → generation of every route in a table: derived from the routes' sources. */
  #running(table: ScopedTable): ReadonlyMap<string, number> {
    let running = this.#runningOf.get(table);
    if (running === undefined) {
      const map = new Map<string, number>();
      for (const { route } of table.entries.values()) map.set(`${route.source.namespace}/${route.source.name}`, route.source.generation);
      running = map;
      this.#runningOf.set(table, running);
    }
    return running;
  }

  #conditionCounts(): { condition: string; status: string; routes: number }[] {
    const counts = new Map<string, { condition: string; status: string; routes: number }>();
    for (const status of this.#published.values()) {
      for (const condition of status.conditions ?? []) {
        const id = `${condition.type}=${condition.status}`;
        const entry = counts.get(id) ?? { condition: condition.type, status: condition.status, routes: 0 };
        entry.routes++;
        counts.set(id, entry);
      }
    }
    return [...counts.values()];
  }
}
