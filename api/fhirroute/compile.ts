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
  return versionOfFingerprints(routes.map(routeFingerprint));
}

/** contentVersion of the routes with these fingerprints, in this order. */
export function versionOfFingerprints(fingerprints: readonly string[]): string {
  // One string hashed at once: an update per route costs more than the hashing itself.
  return createHash('sha256').update(fingerprints.join('\n')).digest('hex').slice(0, 16);
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
  fingerprint?: string;
  /** The last verdict given, handed out again while it says the same. */
  result?: RouteResult;
  // The lineage's verdicts, as of the compilation that owns it (see Lineage).
  /** The compilation (its epoch) that last listed this route. */
  epoch: number;
  /** Valid, and the first route with its key: it takes part in settling claims. */
  contender: boolean;
  /** Why it lost a claim; undefined for a contender that lost none. */
  lostMessage: string | undefined;
  /** The compilation (its epoch) that last put it in the table. */
  tableEpoch: number;
}

/**
 * What a chain of compilations shares. The memos are good for any compilation (each is checked
 * against the resolver before use); the indexes and the memos' verdict fields describe one
 * compilation only, the `owner`: compiling from any other (an older one, or after a compile that
 * threw) rebuilds them, and the result is the same either way.
 */
interface Lineage {
  readonly memos: WeakMap<FhirRoute, RouteMemo>;
  owner: Compilation | undefined;
  /** key → the routes listed with it (almost always one). */
  byKey: Map<string, RouteMemo[]>;
  /** Keys listed more than once. */
  sharedKeys: Set<string>;
  /** Claim id → the contenders claiming it. */
  claimants: Map<string, RouteMemo[]>;
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

/** What a route's flags say about it, for a list that names every route once. */
function verdictOf(memo: RouteMemo): { reason: AcceptedReason; message: string } {
  const { key, invalidMessage } = memo.prepared;
  if (invalidMessage !== undefined) return { reason: 'Invalid', message: invalidMessage };
  if (!memo.contender) return { reason: 'Conflicted', message: duplicateMessage(key) };
  if (memo.lostMessage !== undefined) return { reason: 'Conflicted', message: memo.lostMessage };
  return { reason: 'Accepted', message: '' };
}

function duplicateMessage(key: string): string {
  return `${key} is given more than once and only the first is used: remove or rename the other copy`;
}

/**
 * From nothing: every verdict by position (a list may name one route object twice), and the
 * lineage's indexes for the compilations after.
 */
function settleAll(lineage: Lineage, memos: readonly RouteMemo[], epoch: number): { reasons: AcceptedReason[]; messages: string[] } {
  lineage.byKey = new Map();
  lineage.sharedKeys = new Set();
  lineage.claimants = new Map();
  const reasons: AcceptedReason[] = [];
  const messages: string[] = [];
  const listed = new Set<RouteMemo>();
  // Duplicate keys: the first in source order is the one used, whatever its verdict.
  const contenders: RouteMemo[] = [];
  for (const memo of memos) {
    const { key, invalidMessage } = memo.prepared;
    const sameKey = lineage.byKey.get(key);
    if (!listed.has(memo)) {
      listed.add(memo);
      memo.epoch = epoch;
      memo.contender = false;
      memo.lostMessage = undefined;
      memo.tableEpoch = 0;
      if (sameKey === undefined) lineage.byKey.set(key, [memo]);
      else {
        sameKey.push(memo);
        lineage.sharedKeys.add(key);
      }
    }
    if (invalidMessage !== undefined) {
      reasons.push('Invalid');
      messages.push(invalidMessage);
    } else if (sameKey !== undefined) {
      reasons.push('Conflicted');
      messages.push(duplicateMessage(key));
    } else {
      reasons.push('Accepted');
      messages.push('');
      memo.contender = true;
      contenders.push(memo);
    }
  }
  for (const memo of contenders) for (const claim of claimsOfMemo(memo)) addTo(lineage.claimants, claim.id, memo);
  settleClaims(contenders.sort(olderFirst));
  memos.forEach((memo, index) => {
    if (reasons[index] === 'Accepted' && memo.lostMessage !== undefined) {
      reasons[index] = 'Conflicted';
      messages[index] = memo.lostMessage;
    }
  });
  return { reasons, messages };
}

/**
 * From the owner's indexes: only the keys and claims that routes added or gone share are settled
 * again. False where it cannot (a list naming one route object twice): then everything is.
 */
function settleChanges(lineage: Lineage, lastMemos: readonly RouteMemo[], memos: readonly RouteMemo[], lastEpoch: number, epoch: number): boolean {
  const added: RouteMemo[] = [];
  for (const memo of memos) {
    if (memo.epoch === epoch) return false;
    if (memo.epoch !== lastEpoch) added.push(memo);
    memo.epoch = epoch;
  }
  const gone = lastMemos.filter((memo) => memo.epoch !== epoch);
  if (added.length === 0 && gone.length === 0 && lineage.sharedKeys.size === 0) return true;

  // Keys: a key listed more than once goes to its first route in source order.
  const touchedKeys = new Set<string>();
  for (const memo of gone) {
    const key = memo.prepared.key;
    const rest = (lineage.byKey.get(key) ?? []).filter((other) => other !== memo);
    if (rest.length === 0) lineage.byKey.delete(key);
    else lineage.byKey.set(key, rest);
    if (rest.length < 2) lineage.sharedKeys.delete(key);
    touchedKeys.add(key);
  }
  for (const memo of added) {
    const key = memo.prepared.key;
    memo.contender = false;
    memo.lostMessage = undefined;
    memo.tableEpoch = 0;
    addTo(lineage.byKey, key, memo);
    if ((lineage.byKey.get(key)?.length ?? 0) > 1) lineage.sharedKeys.add(key);
    touchedKeys.add(key);
  }
  // A shared key's first route can change with the order alone: such keys are looked at every time.
  const firstOf = new Map<string, RouteMemo>();
  if (lineage.sharedKeys.size > 0) {
    for (const memo of memos) {
      const key = memo.prepared.key;
      if (lineage.sharedKeys.has(key) && !firstOf.has(key)) firstOf.set(key, memo);
    }
    for (const key of lineage.sharedKeys) touchedKeys.add(key);
  }
  const lostContention: RouteMemo[] = gone.filter((memo) => memo.contender);
  const gainedContention: RouteMemo[] = [];
  for (const key of touchedKeys) {
    for (const memo of lineage.byKey.get(key) ?? []) {
      const contender = memo.prepared.invalidMessage === undefined && (firstOf.get(key) ?? memo) === memo;
      if (contender !== memo.contender) (contender ? gainedContention : lostContention).push(memo);
    }
  }

  // Claims: a change reaches only the contenders connected to it through shared claims.
  const dirty: string[] = [];
  for (const memo of lostContention) {
    for (const claim of claimsOfMemo(memo)) {
      const rest = (lineage.claimants.get(claim.id) ?? []).filter((other) => other !== memo);
      if (rest.length === 0) lineage.claimants.delete(claim.id);
      else lineage.claimants.set(claim.id, rest);
      dirty.push(claim.id);
    }
    memo.contender = false;
    memo.lostMessage = undefined;
  }
  for (const memo of gainedContention) {
    memo.contender = true;
    for (const claim of claimsOfMemo(memo)) {
      addTo(lineage.claimants, claim.id, memo);
      dirty.push(claim.id);
    }
  }
  const reached = new Set<RouteMemo>();
  const visited = new Set<string>();
  while (dirty.length > 0) {
    const id = dirty.pop() as string;
    if (visited.has(id)) continue;
    visited.add(id);
    for (const memo of lineage.claimants.get(id) ?? []) {
      if (reached.has(memo)) continue;
      reached.add(memo);
      for (const claim of claimsOfMemo(memo)) if (!visited.has(claim.id)) dirty.push(claim.id);
    }
  }
  settleClaims([...reached].sort(olderFirst));
  return true;
}

function addTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const values = map.get(key);
  if (values === undefined) map.set(key, [value]);
  else values.push(value);
}

function byDestination(a: RouteMemo, b: RouteMemo): number {
  return compareText(a.prepared.route.spec.destination, b.prepared.route.spec.destination);
}

const fingerprints = new WeakMap<CompiledRoute, string>();

function fingerprintOf(route: CompiledRoute): string {
  return createHash('sha256').update(canonicalJson(route)).digest('hex');
}

function memoOf(prepared: PreparedRoute): RouteMemo {
  const created = Date.parse(prepared.route.metadata.creationTimestamp ?? '');
  return { prepared, ageMs: Number.isNaN(created) ? Number.POSITIVE_INFINITY : created, epoch: 0, contender: false, lostMessage: undefined, tableEpoch: 0 };
}

function claimsOfMemo(memo: RouteMemo): readonly Claim[] {
  return (memo.claims ??= claimsOf(memo.prepared.route));
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

// ---- conflicts: each destination id and host belongs to one route, the oldest ----

/**
 * Decided over every valid route, whatever its scope, so a route's status does not depend on which
 * proxy asks. A route with unresolved refs keeps its claims: a missing Secret must not hand its
 * destination to a younger route. A loser claims nothing, so it blocks no one else.
 * No separate path-segment claim: the segment is the destination id, claimed already.
 * Sets each contender's lostMessage; `contenders` are oldest first and share no claim with others.
 */
function settleClaims(contenders: readonly RouteMemo[]): void {
  const owners = new Map<string, RouteMemo>();
  for (const memo of contenders) {
    const claims = claimsOfMemo(memo);
    let taken: Claim[] | undefined;
    for (const claim of claims) if (owners.has(claim.id)) (taken ??= []).push(claim);
    if (taken === undefined) {
      memo.lostMessage = undefined;
      for (const claim of claims) owners.set(claim.id, memo);
      continue;
    }
    memo.lostMessage = taken
      .map((claim) => {
        const owner = owners.get(claim.id) as RouteMemo;
        const why = owner.ageMs < memo.ageMs ? 'older' : 'same age, first by namespace/name';
        return `${claim.what} is already claimed by ${owner.prepared.key} (${why}); ${claim.fix}`;
      })
      .join('; ');
  }
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
