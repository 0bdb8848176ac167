// The one computation of route status: each route's desired status from the translation in force
// and every proxy the views provider lists. Every reader (status writes, /debug/status, metrics) reads it.
// Incremental: a refresh computes again only the routes whose inputs moved.

import { exportScopeOf, type FhirRoute, type FhirRouteStatus, type RouteResult } from '../../../api/index.ts';
import { canonicalJson } from '../../../runtime/index.ts';
import type { Translation } from '../compile/index.ts';
import { groupViews, mergeViews, namespaceSummaries } from './internal/proxy-groups.ts';
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

/** What one route's status was computed from, to tell whether computing it again could differ. */
interface Computed {
  route: FhirRoute;
  result: RouteResult;
  /** What `stored` answered, by identity (a cache keeps an unchanged object). */
  stored: FhirRouteStatus | undefined;
  status: FhirRouteStatus;
  /** Whether computing again from the same inputs gives the same status (see isSettled). */
  settled: boolean;
}

export class DesiredStatuses {
  readonly #options: DesiredStatusesOptions;
  /** By key, in translation order: the result of the last refresh. */
  #statuses = new Map<string, Computed>();
  /** Per namespace, the summary of its proxies the last refresh counted (namespaceSummaries). */
  #proxySummaries = new Map<string, string>();
  /** The routes of the last refresh, in order. */
  #order: readonly RouteOf[] = [];
  /** Kept as statuses change, for readers that come often (metrics scrapes). */
  readonly #counts = new Map<string, { condition: string; status: string; routes: number }>();
  #sorted: [string, FhirRouteStatus][] | undefined;

  constructor(options: DesiredStatusesOptions) {
    this.#options = options;
  }

  /**
   * The status `key` should have, as of the last refresh; undefined for a route the translation does
   * not have (or before the first refresh). Readers between two refreshes all see the same answer.
   */
  desiredStatus(key: string): FhirRouteStatus | undefined {
    return this.#statuses.get(key)?.status;
  }

  /** Every route's desired status, by key. */
  entries(): [string, FhirRouteStatus][] {
    this.#sorted ??= [...this.#statuses].map(([key, { status }]): [string, FhirRouteStatus] => [key, status]).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return [...this.#sorted];
  }

  keys(): string[] {
    return [...this.#statuses.keys()];
  }

  /** How many routes have each condition type at each status: what fhirmesh_controller_routes shows. */
  conditionCounts(): { condition: string; status: string; routes: number }[] {
    return [...this.#counts.values()].filter((count) => count.routes > 0).map((count) => ({ ...count }));
  }

  /**
   * Brings every route's status up to the inputs as they are now. Safe to run any time, any number
   * of times: the same inputs give the same statuses (and no changes). Only routes whose inputs
   * moved are computed again: their object or verdict, their stored status, or the proxies of a
   * namespace they are exported to.
   */
  refresh(): StatusChanges {
    const changes: StatusChanges = { changed: [], removed: [] };
    const translation = this.#options.translation();
    if (translation === undefined) return changes;
    const now = (this.#options.now ?? (() => new Date()))();
    const proxies = groupViews(mergeViews(this.#options.proxyViews()));
    const summaries = namespaceSummaries(proxies);
    const moved = movedNamespaces(this.#proxySummaries, summaries);
    this.#proxySummaries = summaries;
    const order = routesOf(translation);
    // A new translation may add, drop or reorder keys: then the map is made again, in its order.
    const sameKeys = order === this.#order || sameKeyOrder(this.#order, order);
    this.#order = order;
    const statuses = this.#statuses;
    const next = sameKeys ? statuses : new Map<string, Computed>();
    for (const { key, route, result } of order) {
      const last = statuses.get(key);
      const stored = this.#options.stored?.(key);
      if (last !== undefined && last.settled && last.route === route && sameResult(last.result, result) && last.stored === stored && !reaches(route, moved)) {
        if (!sameKeys) next.set(key, last);
        continue;
      }
      const previous = previousOf(stored, last?.status) ?? route.status;
      const computed = computeRouteStatus({ route, result, proxies, previous, now });
      // Unchanged: the same object, so a reader holding it can tell by identity too.
      // Only routes whose inputs moved get here, so comparing whole statuses is cheap; and it cannot
      // miss a field added to FhirRouteStatus later.
      const status = last !== undefined && canonicalJson(last.status) === canonicalJson(computed) ? last.status : computed;
      next.set(key, { route, result, stored, status, settled: isSettled(status, stored) });
      if (status !== last?.status) {
        changes.changed.push(key);
        if (last !== undefined) this.#count(last.status, -1);
        this.#count(status, 1);
      }
    }
    if (!sameKeys) {
      for (const [key, last] of statuses) {
        if (next.has(key)) continue;
        changes.removed.push(key);
        this.#count(last.status, -1);
      }
      this.#statuses = next;
    }
    if (changes.changed.length > 0 || changes.removed.length > 0) this.#sorted = undefined;
    return changes;
  }

  #count(status: FhirRouteStatus, delta: number): void {
    for (const condition of status.conditions ?? []) {
      const id = `${condition.type}=${condition.status}`;
      let count = this.#counts.get(id);
      if (count === undefined) {
        count = { condition: condition.type, status: condition.status, routes: 0 };
        this.#counts.set(id, count);
      }
      count.routes += delta;
    }
  }
}

/** Namespaces whose proxy summary differs; '*' in the set when any does (a route exported to all sees it). */
function movedNamespaces(before: ReadonlyMap<string, string>, after: ReadonlyMap<string, string>): ReadonlySet<string> {
  const moved = new Set<string>();
  for (const [namespace, summary] of after) if (before.get(namespace) !== summary) moved.add(namespace);
  for (const namespace of before.keys()) if (!after.has(namespace)) moved.add(namespace);
  if (moved.size > 0) moved.add('*');
  return moved;
}

/** Whether the proxies a route's Programmed condition counts (those of namespaces it is exported to) moved. */
function reaches(route: FhirRoute, moved: ReadonlySet<string>): boolean {
  if (moved.size === 0) return false;
  for (const namespace of exportScopeOf(route)) if (moved.has(namespace)) return true;
  return false;
}

/**
 * Whether computing again with the same inputs keeps `status`: it does unless the stored status
 * has a condition at the same status with another lastTransitionTime (the next computation takes
 * the stored one, see previousOf).
 */
function isSettled(status: FhirRouteStatus, stored: FhirRouteStatus | undefined): boolean {
  if (stored === undefined) return true;
  for (const condition of status.conditions ?? []) {
    const written = stored.conditions?.find((c) => c.type === condition.type);
    if (written?.status === condition.status && written.lastTransitionTime !== condition.lastTransitionTime) return false;
  }
  return true;
}

function sameResult(a: RouteResult, b: RouteResult): boolean {
  return (
    a === b ||
    (a.key === b.key &&
      a.generation === b.generation &&
      a.accepted === b.accepted &&
      a.acceptedReason === b.acceptedReason &&
      a.resolvedRefs === b.resolvedRefs &&
      a.resolvedRefsReason === b.resolvedRefsReason &&
      a.message === b.message &&
      a.acceptedMessage === b.acceptedMessage &&
      a.resolvedRefsMessage === b.resolvedRefsMessage)
  );
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

interface RouteOf {
  key: string;
  route: FhirRoute;
  result: RouteResult;
}

const routesByTranslation = new WeakMap<Translation, readonly RouteOf[]>();

function sameKeyOrder(a: readonly RouteOf[], b: readonly RouteOf[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i]?.key !== b[i]?.key) return false;
  return true;
}

/** Each route once: a key given twice is the first object (compile marks the copy Conflicted). Once per translation. */
function routesOf(translation: Translation): readonly RouteOf[] {
  const cached = routesByTranslation.get(translation);
  if (cached !== undefined) return cached;
  const seen = new Set<string>();
  const routes: RouteOf[] = [];
  translation.routes.forEach((route, index) => {
    const result = translation.results[index];
    if (result === undefined || seen.has(result.key)) return;
    seen.add(result.key);
    routes.push({ key: result.key, route, result });
  });
  routesByTranslation.set(translation, routes);
  return routes;
}
