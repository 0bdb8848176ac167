// Who gets a key, a destination id and a host when routes collide: a key goes to its first route in
// source order, a claim to the oldest route. Settled over every route once, then only where a change reaches.
import type { AcceptedReason, PreparedRoute, RouteResult } from './route-compile.ts';
import type { CompiledRoute, FhirRoute } from './types.ts';

/** What compile keeps of one route object between compilations; every field a function of `prepared`. */
export interface RouteMemo {
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
export interface Lineage {
  readonly memos: WeakMap<FhirRoute, RouteMemo>;
  /** The compilation these indexes describe. */
  owner: object | undefined;
  /** key → the routes listed with it (almost always one). */
  byKey: Map<string, RouteMemo[]>;
  /** Keys listed more than once. */
  sharedKeys: Set<string>;
  /** Claim id → the contenders claiming it. */
  claimants: Map<string, RouteMemo[]>;
}

export function memoOf(prepared: PreparedRoute): RouteMemo {
  const created = Date.parse(prepared.route.metadata.creationTimestamp ?? '');
  return { prepared, ageMs: Number.isNaN(created) ? Number.POSITIVE_INFINITY : created, epoch: 0, contender: false, lostMessage: undefined, tableEpoch: 0 };
}

function claimsOfMemo(memo: RouteMemo): readonly Claim[] {
  return (memo.claims ??= claimsOf(memo.prepared.route));
}

/** What a route's flags say about it, for a list that names every route once. */
export function verdictOf(memo: RouteMemo): { reason: AcceptedReason; message: string } {
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
export function settleAll(lineage: Lineage, memos: readonly RouteMemo[], epoch: number): { reasons: AcceptedReason[]; messages: string[] } {
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
export function settleChanges(lineage: Lineage, lastMemos: readonly RouteMemo[], memos: readonly RouteMemo[], lastEpoch: number, epoch: number): boolean {
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
export function olderFirst(a: RouteMemo, b: RouteMemo): number {
  const byAge = a.ageMs - b.ageMs;
  if (byAge !== 0 && !Number.isNaN(byAge)) return byAge;
  return compareText(a.prepared.namespace, b.prepared.namespace) || compareText(a.prepared.route.metadata.name, b.prepared.route.metadata.name);
}

export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
