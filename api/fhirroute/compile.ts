// Turns FhirRoutes into the route table proxies run: validate, resolve references, settle conflicting
// claims (oldest wins), apply defaults and scope. Pure: every outside fact arrives through RefResolver.
// Incremental: given the compilation before, a route object seen before whose lookups get the same
// answers is not validated, resolved or compiled again, and the orders are merged, not re-sorted.
import { createHash } from 'node:crypto';
import { canonicalJson } from '../../runtime/index.ts';
import { isExportedTo } from './route-references.ts';
import { compileRoute, prepareRoute, sameAnswers, type PreparedRoute, type RefResolver, type ResolvedRefsReason } from './route-compile.ts';
import type { CompiledRoute, FhirRoute, RouteTableSnapshot } from './types.ts';

export type { RefResolver, ResolvedRefsReason } from './route-compile.ts';

export type AcceptedReason = 'Accepted' | 'Invalid' | 'Conflicted';

/** The verdict on one FhirRoute: what its Accepted and ResolvedRefs conditions say. */
export interface RouteResult {
  /** namespace/name */
  key: string;
  generation: number;
  accepted: boolean;
  acceptedReason: AcceptedReason;
  resolvedRefs: boolean;
  resolvedRefsReason: ResolvedRefsReason;
  /** The one line for a person: why the route is not in the table (what to do), or what it routes. */
  message: string;
  /** The Accepted condition's message. */
  acceptedMessage: string;
  /** The ResolvedRefs condition's message. */
  resolvedRefsMessage: string;
}

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
  const hash = createHash('sha256');
  for (const route of routes) hash.update(routeFingerprint(route)).update('\n');
  return hash.digest('hex').slice(0, 16);
}

/** What compile keeps of one route object between compilations; every field a function of `prepared`. */
interface RouteMemo {
  readonly prepared: PreparedRoute;
  /** creationTimestamp in ms; a route without one (a routes file) counts as newer than any with one. */
  readonly ageMs: number;
  /** Valid routes only, on first need. */
  claims?: readonly Claim[];
  /** Accepted routes only, on first need. */
  compiled?: CompiledRoute;
  /** The last verdict given, handed out again while it says the same. */
  result?: RouteResult;
}

/** One compile of a list of routes: every route's verdict and the table of all accepted routes. */
export class Compilation {
  /** Every accepted route, whatever its scope, in destination-id order. */
  readonly snapshot: RouteTableSnapshot;
  /** One per input route, in input order; an unchanged verdict is the same object as before. */
  readonly results: readonly RouteResult[];
  readonly #memos: Map<FhirRoute, RouteMemo>;
  /** Valid routes with their own key, oldest first: the order claims are settled in. */
  readonly #contenders: readonly RouteMemo[];
  readonly #contenderSet: ReadonlySet<RouteMemo>;

  constructor(routes: readonly FhirRoute[], refs: RefResolver, previous?: Compilation) {
    const before = previous === undefined ? undefined : { memos: previous.#memos, contenders: previous.#contenders, contenderSet: previous.#contenderSet };
    const memos = new Map<FhirRoute, RouteMemo>();
    const entries = routes.map((route) => {
      let memo = memos.get(route);
      if (memo !== undefined) return memo;
      const seen = before?.memos.get(route);
      memo = seen !== undefined && sameAnswers(seen.prepared.lookups, refs) ? seen : memoOf(prepareRoute(route, refs));
      memos.set(route, memo);
      return memo;
    });
    this.#memos = memos;

    // Duplicate keys: the first in source order is the one used, whatever its verdict.
    const reasons: AcceptedReason[] = [];
    const messages: string[] = [];
    const seenKeys = new Set<string>();
    const contenderSet = new Set<RouteMemo>();
    for (const memo of entries) {
      const { key, invalidMessage } = memo.prepared;
      if (invalidMessage !== undefined) {
        reasons.push('Invalid');
        messages.push(invalidMessage);
      } else if (seenKeys.has(key)) {
        reasons.push('Conflicted');
        messages.push(`${key} is given more than once and only the first is used: remove or rename the other copy`);
      } else {
        reasons.push('Accepted');
        messages.push('');
        contenderSet.add(memo);
      }
      seenKeys.add(key);
    }
    this.#contenderSet = contenderSet;
    this.#contenders = mergeOrdered(
      before?.contenders.filter((memo) => contenderSet.has(memo)) ?? [],
      [...contenderSet].filter((memo) => before?.contenderSet.has(memo) !== true),
      olderFirst,
    );
    const lost = settleClaims(this.#contenders);

    const accepted = new Set<CompiledRoute>();
    this.results = entries.map((memo, index) => {
      let reason = reasons[index] as AcceptedReason;
      let message = messages[index] as string;
      const lostMessage = reason === 'Accepted' ? lost.get(memo) : undefined;
      if (lostMessage !== undefined) {
        reason = 'Conflicted';
        message = lostMessage;
      }
      if (reason === 'Accepted' && memo.prepared.refFailures.length === 0) accepted.add(compiledOf(memo));
      return resultOf(memo, reason, message);
    });
    const stayed = previous?.snapshot.routes.filter((route) => accepted.has(route)) ?? [];
    const kept = new Set(stayed);
    const compiled = mergeOrdered(
      stayed,
      [...accepted].filter((route) => !kept.has(route)),
      (a, b) => compareText(a.destinationId, b.destinationId),
    );
    this.snapshot = { version: contentVersion(compiled), routes: compiled };
  }
}

const fingerprints = new WeakMap<CompiledRoute, string>();

function fingerprintOf(route: CompiledRoute): string {
  return createHash('sha256').update(canonicalJson(route)).digest('hex');
}

function memoOf(prepared: PreparedRoute): RouteMemo {
  const created = Date.parse(prepared.route.metadata.creationTimestamp ?? '');
  return { prepared, ageMs: Number.isNaN(created) ? Number.POSITIVE_INFINITY : created };
}

function compiledOf(memo: RouteMemo): CompiledRoute {
  if (memo.compiled === undefined) {
    const { route, namespace, tls } = memo.prepared;
    const compiled = compileRoute(route, namespace, tls);
    fingerprints.set(compiled, fingerprintOf(compiled));
    memo.compiled = compiled;
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

// ---- conflicts: each destination id and host belongs to one route, the oldest ----

/**
 * Decided over every valid route, whatever its scope, so a route's status does not depend on which
 * proxy asks. A route with unresolved refs keeps its claims: a missing Secret must not hand its
 * destination to a younger route. A loser claims nothing, so it blocks no one else.
 * No separate path-segment claim: the segment is the destination id, claimed already.
 * Returns the losers, each with why it lost.
 */
function settleClaims(contenders: readonly RouteMemo[]): Map<RouteMemo, string> {
  const owners = new Map<string, RouteMemo>();
  const lost = new Map<RouteMemo, string>();
  for (const memo of contenders) {
    const claims = (memo.claims ??= claimsOf(memo.prepared.route));
    let taken: Claim[] | undefined;
    for (const claim of claims) if (owners.has(claim.id)) (taken ??= []).push(claim);
    if (taken === undefined) {
      for (const claim of claims) owners.set(claim.id, memo);
      continue;
    }
    lost.set(
      memo,
      taken
        .map((claim) => {
          const owner = owners.get(claim.id) as RouteMemo;
          const why = owner.ageMs < memo.ageMs ? 'older' : 'same age, first by namespace/name';
          return `${claim.what} is already claimed by ${owner.prepared.key} (${why}); ${claim.fix}`;
        })
        .join('; '),
    );
  }
  return lost;
}

interface Claim {
  id: string;
  what: string;
  fix: string;
}

function claimsOf(route: FhirRoute): Claim[] {
  const destination = route.spec.destination;
  // Hosts are lowercase without port by the schema, so equal text is the same host.
  const hosts = route.spec.addressing.hosts ?? [];
  return [
    { id: `destination:${destination}`, what: `destination ${destination}`, fix: 'choose another destination id' },
    ...hosts.map((host) => ({
      id: `host:${host}`,
      what: `host ${host}`,
      fix: 'remove it from addressing.hosts or use another host',
    })),
  ];
}

/** Oldest first, then by namespace/name: a total order, since contenders' keys are distinct. */
function olderFirst(a: RouteMemo, b: RouteMemo): number {
  const byAge = a.ageMs - b.ageMs;
  if (byAge !== 0 && !Number.isNaN(byAge)) return byAge;
  return compareText(a.prepared.namespace, b.prepared.namespace) || compareText(a.prepared.route.metadata.name, b.prepared.route.metadata.name);
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

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
