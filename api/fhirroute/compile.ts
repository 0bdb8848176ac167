// Turns FhirRoutes into the route table proxies run: validate, resolve references, settle conflicting
// claims (oldest wins), apply defaults and scope. Pure: every outside fact arrives through RefResolver.
// Incremental: given the compilation before, a route object seen before whose lookups get the same
// answers is not validated, resolved or compiled again, and the orders are merged, not re-sorted.
import { createHash } from 'node:crypto';
import { canonicalJson } from '../../runtime/index.ts';
import { isExportedTo } from './route-references.ts';
import { compareText, memoOf, settleAll, settleChanges, verdictOf, type Lineage, type RouteMemo } from './route-claims.ts';
import { compileRoute, prepareRoute, sameAnswers, type AcceptedReason, type RefResolver, type RouteResult } from './route-compile.ts';
import type { CompiledRoute, FhirRoute, RouteTableSnapshot } from './types.ts';

export type { AcceptedReason, RefResolver, ResolvedRefsReason, RouteResult } from './route-compile.ts';

export interface CompileOptions {
  /** Only routes exported to this namespace go in the snapshot; all accepted routes when absent. */
  proxyNamespace?: string;
}

export interface CompileResult {
  snapshot: RouteTableSnapshot;
  /** One per input route, in input order. */
  results: RouteResult[];
}

export function compileRoutes(routes: FhirRoute[], refs: RefResolver, opts: CompileOptions = {}): CompileResult {
  const compilation = compileIncrementally(routes, refs);
  const snapshot = compilation.snapshot;
  return {
    snapshot: opts.proxyNamespace === undefined ? snapshot : scopeSnapshot(snapshot, opts.proxyNamespace),
    results: [...compilation.results],
  };
}

/**
 * Compiles `routes`, reusing from `previous` what cannot have changed: the result is exactly what a
 * compile from nothing gives (sources keep an unchanged FhirRoute the same object; one that does not
 * is only compiled again).
 */
export function compileIncrementally(routes: readonly FhirRoute[], refs: RefResolver, previous?: Compilation): Compilation {
  return new Compilation(routes, refs, previous);
}

/**
 * The table proxies in `namespace` run, cut from an unscoped snapshot without compiling again:
 * the controller compiles once per change and scopes once per namespace.
 */
export function scopeSnapshot(snapshot: RouteTableSnapshot, namespace: string): RouteTableSnapshot {
  const routes = snapshot.routes.filter((route) => isExportedTo(route, namespace));
  return { version: contentVersion(routes), routes };
}

/** Content hash of one compiled route: equal routes, equal fingerprints (computed once per route compile made). */
export function routeFingerprint(route: CompiledRoute): string {
  return fingerprints.get(route) ?? fingerprintOf(route);
}

/** A short hash of the routes' fingerprints, so an unchanged table keeps its version. */
export function contentVersion(routes: readonly CompiledRoute[]): string {
  return versionOfFingerprints(routes.map(routeFingerprint));
}

/** contentVersion of the routes with these fingerprints, in this order. */
export function versionOfFingerprints(fingerprints: readonly string[]): string {
  // One string hashed at once: an update per route costs more than the hashing itself.
  return createHash('sha256').update(fingerprints.join('\n')).digest('hex').slice(0, 16);
}

let epochs = 0;

/** One compile of a list of routes: every route's verdict and the table of all accepted routes. */
export class Compilation {
  /** Every accepted route, whatever its scope, in destination-id order. */
  readonly snapshot: RouteTableSnapshot;
  /** One per input route, in input order; an unchanged verdict is the same object as before. */
  readonly results: readonly RouteResult[];
  readonly #epoch = ++epochs;
  readonly #lineage: Lineage;
  /** One per input route, in input order. */
  readonly #memos: readonly RouteMemo[];
  readonly #routes: readonly FhirRoute[];
  /** The memo of each route in the snapshot, in the same order. */
  readonly #tableMemos: readonly RouteMemo[];

  constructor(routes: readonly FhirRoute[], refs: RefResolver, previous?: Compilation) {
    const epoch = this.#epoch;
    const last = previous === undefined ? undefined : { lineage: previous.#lineage, epoch: previous.#epoch, routes: previous.#routes, memos: previous.#memos, tableMemos: previous.#tableMemos };
    const lineage = last?.lineage ?? { memos: new WeakMap(), owner: undefined, byKey: new Map(), sharedKeys: new Set(), claimants: new Map() };
    const owned = previous !== undefined && lineage.owner === previous;
    // Until this constructor returns no compilation owns the lineage: if it throws, the next one rebuilds.
    lineage.owner = undefined;
    this.#lineage = lineage;
    this.#routes = routes;

    const memos: RouteMemo[] = [];
    for (let index = 0; index < routes.length; index++) {
      const route = routes[index] as FhirRoute;
      let memo = last?.routes[index] === route ? last.memos[index] : lineage.memos.get(route);
      if (memo === undefined || (memo.prepared.lookups.length > 0 && !sameAnswers(memo.prepared.lookups, refs))) {
        memo = memoOf(prepareRoute(route, refs));
        lineage.memos.set(route, memo);
      }
      memos.push(memo);
    }
    this.#memos = memos;

    const incremental = owned && last !== undefined && settleChanges(lineage, last.memos, memos, last.epoch, epoch);
    const verdicts = incremental ? undefined : settleAll(lineage, memos, epoch);

    const results: RouteResult[] = [];
    const tableMemos: RouteMemo[] = [];
    const newInTable: RouteMemo[] = [];
    for (let index = 0; index < memos.length; index++) {
      const memo = memos[index] as RouteMemo;
      const { reason, message } = verdicts === undefined ? verdictOf(memo) : { reason: verdicts.reasons[index] as AcceptedReason, message: verdicts.messages[index] as string };
      if (reason === 'Accepted' && memo.prepared.refFailures.length === 0) {
        compiledOf(memo);
        if (memo.tableEpoch !== last?.epoch) newInTable.push(memo);
        memo.tableEpoch = epoch;
        tableMemos.push(memo);
      }
      results.push(resultOf(memo, reason, message));
    }
    this.results = results;
    // Those that stayed keep their places; the few new ones are sorted in.
    const stayed = incremental && last !== undefined ? last.tableMemos.filter((memo) => memo.tableEpoch === epoch) : [];
    this.#tableMemos = incremental ? mergeOrdered(stayed, newInTable, byDestination) : tableMemos.sort(byDestination);
    const compiled = this.#tableMemos.map((memo) => memo.compiled as CompiledRoute);
    this.snapshot = { version: versionOfFingerprints(this.#tableMemos.map((memo) => memo.fingerprint as string)), routes: compiled };
    lineage.owner = this;
  }
}

function byDestination(a: RouteMemo, b: RouteMemo): number {
  return compareText(a.prepared.route.spec.destination, b.prepared.route.spec.destination);
}

const fingerprints = new WeakMap<CompiledRoute, string>();

function fingerprintOf(route: CompiledRoute): string {
  return createHash('sha256').update(canonicalJson(route)).digest('hex');
}

function compiledOf(memo: RouteMemo): CompiledRoute {
  if (memo.compiled === undefined) {
    const { route, namespace, tls } = memo.prepared;
    const compiled = compileRoute(route, namespace, tls);
    const fingerprint = fingerprintOf(compiled);
    fingerprints.set(compiled, fingerprint);
    memo.compiled = compiled;
    memo.fingerprint = fingerprint;
  }
  return memo.compiled;
}

function resultOf(memo: RouteMemo, acceptedReason: AcceptedReason, reasonMessage: string): RouteResult {
  const last = memo.result;
  if (last !== undefined && last.acceptedReason === acceptedReason && (acceptedReason === 'Accepted' || last.acceptedMessage === reasonMessage)) return last;
  const { route, key, refFailures } = memo.prepared;
  const accepted = acceptedReason === 'Accepted';
  const resolvedRefs = refFailures.length === 0;
  const acceptedMessage = accepted ? `routes destination ${route.spec.destination}` : reasonMessage;
  const resolvedRefsMessage = resolvedRefs ? 'all references resolved' : refFailures.map((f) => f.message).join('; ');
  const result: RouteResult = {
    key,
    generation: route.metadata.generation ?? 0,
    accepted,
    acceptedReason,
    resolvedRefs,
    resolvedRefsReason: refFailures[0]?.reason ?? 'ResolvedRefs',
    message: !accepted || resolvedRefs ? acceptedMessage : resolvedRefsMessage,
    acceptedMessage,
    resolvedRefsMessage,
  };
  memo.result = result;
  return result;
}

/**
 * `kept` (in order already) and `added` merged into one ordered list: what sorting both together
 * gives under a total order, in O(kept) once the few added are sorted.
 */
function mergeOrdered<T>(kept: readonly T[], added: T[], compare: (a: T, b: T) => number): T[] {
  if (added.length === 0) return kept as T[];
  added.sort(compare);
  if (kept.length === 0) return added;
  const merged: T[] = [];
  let i = 0;
  let j = 0;
  while (i < kept.length && j < added.length) {
    const a = kept[i] as T;
    const b = added[j] as T;
    if (compare(a, b) <= 0) {
      merged.push(a);
      i++;
    } else {
      merged.push(b);
      j++;
    }
  }
  while (i < kept.length) merged.push(kept[i++] as T);
  while (j < added.length) merged.push(added[j++] as T);
  return merged;
}


