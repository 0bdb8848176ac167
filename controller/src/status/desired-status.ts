// The one computation of route status: each route's desired status from the translation in force
// and every proxy the views provider lists. Every reader (status writes, /debug/status, metrics) reads it.

import type { FhirRoute, FhirRouteStatus, RouteResult } from '../../../api/index.ts';
import { canonicalJson } from '../../../runtime/index.ts';
import type { Translation } from '../compile/index.ts';
import { groupViews, mergeViews } from './internal/proxy-groups.ts';
import { computeRouteStatus } from './internal/route-status.ts';
import type { ProxyViews } from './proxy-views.ts';

export interface DesiredStatusesOptions {
  translation: () => Translation | undefined;
  proxyViews: ProxyViews;
  /**
   * The status the route has where statuses are stored (Kubernetes: the cached FhirRoute's), so a
   * condition whose status stays keeps the lastTransitionTime already written, whoever wrote it.
   */
  stored?: (key: string) => FhirRouteStatus | undefined;
  now?: () => Date;
}

/** What a refresh changed: the keys whose desired status is new or different, and those gone. */
export interface StatusChanges {
  changed: string[];
  removed: string[];
}

export class DesiredStatuses {
  readonly #options: DesiredStatusesOptions;
  /** By key, in translation order: the result of the last refresh. */
  #statuses = new Map<string, FhirRouteStatus>();

  constructor(options: DesiredStatusesOptions) {
    this.#options = options;
  }

  /**
   * The status `key` should have, as of the last refresh; undefined for a route the translation does
   * not have (or before the first refresh). Readers between two refreshes all see the same answer.
   */
  desiredStatus(key: string): FhirRouteStatus | undefined {
    return this.#statuses.get(key);
  }

  /** Every route's desired status, by key. */
  entries(): [string, FhirRouteStatus][] {
    return [...this.#statuses].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  keys(): string[] {
    return [...this.#statuses.keys()];
  }

  /** How many routes have each condition type at each status: what fhirmesh_controller_routes shows. */
  conditionCounts(): { condition: string; status: string; routes: number }[] {
    const counts = new Map<string, { condition: string; status: string; routes: number }>();
    for (const status of this.#statuses.values()) {
      for (const condition of status.conditions ?? []) {
        const id = `${condition.type}=${condition.status}`;
        const entry = counts.get(id) ?? { condition: condition.type, status: condition.status, routes: 0 };
        entry.routes++;
        counts.set(id, entry);
      }
    }
    return [...counts.values()];
  }

  /**
   * Computes every route's status again from the inputs as they are now. Safe to run any time, any
   * number of times: the same inputs give the same statuses (and no changes).
   */
  refresh(): StatusChanges {
    const changes: StatusChanges = { changed: [], removed: [] };
    const translation = this.#options.translation();
    if (translation === undefined) return changes;
    const now = (this.#options.now ?? (() => new Date()))();
    const proxies = groupViews(mergeViews(this.#options.proxyViews()));
    const next = new Map<string, FhirRouteStatus>();
    for (const { key, route, result } of routesOf(translation)) {
      const last = this.#statuses.get(key);
      const previous = previousOf(this.#options.stored?.(key), last) ?? route.status;
      const status = computeRouteStatus({ route, result, proxies, previous, now });
      // Unchanged: the same object, so a reader holding it can tell by identity too.
      if (last !== undefined && canonicalJson(last) === canonicalJson(status)) next.set(key, last);
      else {
        next.set(key, status);
        changes.changed.push(key);
      }
    }
    for (const key of this.#statuses.keys()) if (!next.has(key)) changes.removed.push(key);
    this.#statuses = next;
    return changes;
  }
}

/**
 * What lastTransitionTime is kept from: the stored condition where it has the status last computed
 * (or nothing was computed yet), else the last computed one, so a change this replica saw first, and
 * has not seen written yet, keeps the time it was first seen.
 */
function previousOf(stored: FhirRouteStatus | undefined, last: FhirRouteStatus | undefined): FhirRouteStatus | undefined {
  if (stored === undefined || last === undefined) return stored ?? last;
  return {
    conditions: (last.conditions ?? []).map((condition) => {
      const written = stored.conditions?.find((c) => c.type === condition.type);
      return written?.status === condition.status ? written : condition;
    }),
  };
}

/** Each route once: a key given twice is the first object (compile marks the copy Conflicted). */
function routesOf(translation: Translation): { key: string; route: FhirRoute; result: RouteResult }[] {
  const seen = new Set<string>();
  const routes: { key: string; route: FhirRoute; result: RouteResult }[] = [];
  translation.routes.forEach((route, index) => {
    const result = translation.results[index];
    if (result === undefined || seen.has(result.key)) return;
    seen.add(result.key);
    routes.push({ key: result.key, route, result });
  });
  return routes;
}
