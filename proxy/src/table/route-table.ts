// The proxy's in-memory destination table: immutable, swapped atomically, with O(1) lookups by
// destination id and by each carrier's own keys, so the table's size never changes a request's cost.

import type { CompiledBackend, CompiledRoute, CompiledRule, RouteTableSnapshot } from '../../../api/index.ts';
import { type AddressingMode, CARRIERS, type RouteLookup } from '../metadata/carriers/index.ts';
import type { FhirRequestInfo } from '../metadata/fhir-request.ts';

export class RouteTable implements RouteLookup {
  readonly version: string;
  readonly routes: readonly CompiledRoute[];
  readonly loadedAt: Date;
  readonly #byDestination = new Map<string, CompiledRoute>();
  readonly #byKey = new Map<AddressingMode, Map<string, CompiledRoute>>();
  readonly #modesInUse = new Set<AddressingMode>();

  constructor(snapshot: RouteTableSnapshot, loadedAt: Date = new Date()) {
    this.version = snapshot.version;
    this.routes = snapshot.routes;
    this.loadedAt = loadedAt;
    for (const carrier of CARRIERS) if (carrier.indexKeys !== undefined) this.#byKey.set(carrier.mode, new Map());
    for (const route of snapshot.routes) {
      // compile() has already refused conflicting claims; a duplicate here is a broken table.
      if (this.#byDestination.has(route.destinationId)) {
        throw new Error(`route table has destination ${route.destinationId} twice`);
      }
      this.#byDestination.set(route.destinationId, route);
      for (const carrier of CARRIERS) {
        if (carrier.enabled(route)) this.#modesInUse.add(carrier.mode);
        const index = this.#byKey.get(carrier.mode);
        if (index === undefined || carrier.indexKeys === undefined) continue;
        for (const key of carrier.indexKeys(route)) {
          if (index.has(key)) throw new Error(`route table has ${carrier.mode} ${key} twice`);
          index.set(key, route);
        }
      }
    }
  }

  static empty(): RouteTable {
    return new RouteTable({ version: '', routes: [] });
  }

  get size(): number {
    return this.routes.length;
  }

  byDestination(destinationId: string): CompiledRoute | undefined {
    return this.#byDestination.get(destinationId);
  }

  byKey(mode: AddressingMode, key: string): CompiledRoute | undefined {
    return this.#byKey.get(mode)?.get(key);
  }

  uses(mode: AddressingMode): boolean {
    return this.#modesInUse.has(mode);
  }
}

/** First matching rule wins; a route without a matching rule uses its own backend. */
export function selectBackend(route: CompiledRoute, method: string, request: FhirRequestInfo): {
  backend: CompiledBackend;
  rule: CompiledRule | undefined;
} {
  for (const rule of route.rules) {
    if (ruleMatches(rule, method, request)) return { backend: rule.backend, rule };
  }
  return { backend: route.backend, rule: undefined };
}

function ruleMatches(rule: CompiledRule, method: string, request: FhirRequestInfo): boolean {
  if (rule.methods !== undefined && !(rule.methods as readonly string[]).includes(method)) return false;
  if (rule.interactions !== undefined && !(rule.interactions as readonly string[]).includes(request.interaction)) {
    return false;
  }
  if (rule.resourceTypes !== undefined) {
    if (request.resourceType === undefined || !rule.resourceTypes.includes(request.resourceType)) return false;
  }
  if (rule.operations !== undefined) {
    if (request.operation === undefined || !rule.operations.includes(request.operation)) return false;
  }
  return true;
}
