// The proxy's in-memory destination table: immutable, swapped atomically, with O(1) lookups by
// destination id, host and path segment so the table's size never changes the cost of a request.

import type { CompiledBackend, CompiledRoute, CompiledRule, RouteTableSnapshot } from '../../../api/index.ts';
import type { FhirRequestInfo } from '../metadata/fhir-request.ts';

export class RouteTable {
  readonly version: string;
  readonly routes: readonly CompiledRoute[];
  readonly loadedAt: Date;
  readonly #byDestination: Map<string, CompiledRoute>;
  readonly #byHost: Map<string, CompiledRoute>;
  readonly #byPathSegment: Map<string, CompiledRoute>;
  readonly #queryParameterEnabled: boolean;

  constructor(snapshot: RouteTableSnapshot, loadedAt: Date = new Date()) {
    this.version = snapshot.version;
    this.routes = snapshot.routes;
    this.loadedAt = loadedAt;
    this.#byDestination = new Map();
    this.#byHost = new Map();
    this.#byPathSegment = new Map();
    for (const route of snapshot.routes) {
      // compile() has already refused conflicting claims; a duplicate here is a broken table.
      if (this.#byDestination.has(route.destinationId)) {
        throw new Error(`route table has destination ${route.destinationId} twice`);
      }
      this.#byDestination.set(route.destinationId, route);
      if (route.addressing.pathSegment) this.#byPathSegment.set(route.destinationId, route);
      for (const host of route.addressing.hosts) {
        if (this.#byHost.has(host)) throw new Error(`route table has host ${host} twice`);
        this.#byHost.set(host, route);
      }
    }
    this.#queryParameterEnabled = snapshot.routes.some((r) => r.addressing.queryParameter);
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

  /** `host` must already be lower-cased with any port removed. */
  byHost(host: string): CompiledRoute | undefined {
    return this.#byHost.get(host);
  }

  byPathSegment(segment: string): CompiledRoute | undefined {
    return this.#byPathSegment.get(segment);
  }

  /** Lets the request path skip query parsing entirely when no route uses `_x-destination`. */
  get queryParameterEnabled(): boolean {
    return this.#queryParameterEnabled;
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
