// Converts between the compiled route (api/fhirroute) and its wire form (fhirmesh.v1.Route). Decoding
// checks what a proxy relies on, so a route it cannot run is refused (NACKed), never half-applied.

import type { Backend, Backend__Output } from '../generated/fhirmesh/v1/Backend.ts';
import type { Route, Route__Output } from '../generated/fhirmesh/v1/Route.ts';
import {
  FHIR_INTERACTIONS,
  HTTP_METHODS,
  RETRY_ON,
  type CompiledBackend,
  type CompiledRoute,
  type CompiledRule,
} from '../fhirroute/types.ts';

export class RouteDecodeError extends Error {}

export function encodeRoute(route: CompiledRoute): Route {
  return {
    source: { namespace: route.source.namespace, name: route.source.name, generation: route.source.generation },
    destinationId: route.destinationId,
    addressing: { ...route.addressing, hosts: [...route.addressing.hosts] },
    publicBaseUrl: route.publicBaseUrl ?? '',
    backend: encodeBackend(route.backend),
    rules: route.rules.map((rule) => ({
      name: rule.name,
      resourceTypes: rule.resourceTypes ?? [],
      interactions: rule.interactions ?? [],
      operations: rule.operations ?? [],
      methods: rule.methods ?? [],
      backend: encodeBackend(rule.backend),
    })),
    allowedMethods: [...route.allowedMethods],
    maxRequestBodyBytes: route.maxRequestBodyBytes,
    allowEncodedPathSeparators: route.allowEncodedPathSeparators,
    connectTimeoutMs: route.connectTimeoutMs,
    firstByteTimeoutMs: route.firstByteTimeoutMs,
    idleTimeoutMs: route.idleTimeoutMs,
    retryAttempts: route.retryAttempts,
    retryOn: [...route.retryOn],
    rewriteResponseUrls: route.rewriteResponseUrls,
    exportTo: [...route.exportTo],
  };
}

function encodeBackend(backend: CompiledBackend): Backend {
  return {
    baseUrl: backend.baseUrl,
    nextHopDestination: backend.nextHopDestination ?? '',
    ...(backend.tls !== undefined
      ? { tls: { serverName: backend.tls.serverName ?? '', caPem: backend.tls.caPem ?? '', certPem: backend.tls.certPem ?? '', keyPem: backend.tls.keyPem ?? '' } }
      : {}),
  };
}

const DESTINATION_ID = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/**
 * Shares equal strings and string lists among the routes decoded with it: off the wire every field
 * is a fresh copy, and a proxy holding 100,000 routes would keep 100,000 `default`s and `GET` lists.
 * Shared lists are frozen: nothing may change a compiled route.
 */
export class Interner {
  readonly #strings = new Map<string, string>();
  readonly #lists = new Map<string, readonly string[]>();

  string(value: string): string {
    const known = this.#strings.get(value);
    if (known !== undefined) return known;
    this.#strings.set(value, value);
    return value;
  }

  list<T extends string>(values: readonly T[]): T[] {
    const key = values.join('\n');
    const known = this.#lists.get(key);
    if (known !== undefined) return known as T[];
    const list = Object.freeze(values.map((v) => this.string(v))) as T[];
    this.#lists.set(key, list);
    return list;
  }
}

/** Throws RouteDecodeError naming the route and the field it cannot use. */
export function decodeRoute(wire: Route__Output, intern: Interner = new Interner()): CompiledRoute {
  const where = `route ${wire.destinationId || '(no destination id)'}`;
  const fail = (message: string): never => {
    throw new RouteDecodeError(`${where}: ${message}`);
  };
  if (!DESTINATION_ID.test(wire.destinationId)) fail('destination id is not a DNS label');
  // Absent messages are null off the wire and undefined out of the state file's JSON.
  if (wire.source == null) fail('has no source');
  if (wire.addressing == null) fail('has no addressing');
  const source = wire.source as NonNullable<Route__Output['source']>;
  const addressing = wire.addressing as NonNullable<Route__Output['addressing']>;
  const route: CompiledRoute = {
    source: { namespace: intern.string(source.namespace), name: source.name, generation: source.generation },
    destinationId: wire.destinationId,
    addressing: { header: addressing.header, pathSegment: addressing.pathSegment, hosts: intern.list(addressing.hosts), queryParameter: addressing.queryParameter },
    backend: decodeBackend(wire.backend, where, intern),
    rules: wire.rules.map((rule, index): CompiledRule => {
      const compiled: CompiledRule = { name: rule.name || `rule-${index}`, backend: decodeBackend(rule.backend, `${where} rule ${index}`, intern) };
      if (rule.resourceTypes.length > 0) compiled.resourceTypes = intern.list(rule.resourceTypes);
      if (rule.interactions.length > 0) compiled.interactions = intern.list(rule.interactions.map((i) => oneOf(FHIR_INTERACTIONS, i, `${where} rule ${index} interaction`)));
      if (rule.operations.length > 0) compiled.operations = intern.list(rule.operations);
      if (rule.methods.length > 0) compiled.methods = intern.list(rule.methods.map((m) => oneOf(HTTP_METHODS, m, `${where} rule ${index} method`)));
      return compiled;
    }),
    allowedMethods: intern.list(wire.allowedMethods.map((m) => oneOf(HTTP_METHODS, m, `${where} allowed method`))),
    maxRequestBodyBytes: wire.maxRequestBodyBytes,
    allowEncodedPathSeparators: wire.allowEncodedPathSeparators,
    connectTimeoutMs: positive(wire.connectTimeoutMs, `${where} connect timeout`),
    firstByteTimeoutMs: positive(wire.firstByteTimeoutMs, `${where} first-byte timeout`),
    idleTimeoutMs: positive(wire.idleTimeoutMs, `${where} idle timeout`),
    retryAttempts: wire.retryAttempts,
    retryOn: intern.list(wire.retryOn.map((r) => oneOf(RETRY_ON, r, `${where} retry condition`))),
    rewriteResponseUrls: wire.rewriteResponseUrls,
    exportTo: intern.list(wire.exportTo),
  };
  if (wire.publicBaseUrl !== '') route.publicBaseUrl = intern.string(wire.publicBaseUrl);
  return route;
}

function decodeBackend(wire: Backend__Output | null | undefined, where: string, intern: Interner): CompiledBackend {
  if (wire == null) throw new RouteDecodeError(`${where}: has no backend`);
  let url: URL;
  try {
    url = new URL(wire.baseUrl);
  } catch {
    throw new RouteDecodeError(`${where}: backend URL '${wire.baseUrl}' is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new RouteDecodeError(`${where}: backend URL must be http or https`);
  const backend: CompiledBackend = { baseUrl: intern.string(wire.baseUrl) };
  if (wire.nextHopDestination !== '') backend.nextHopDestination = intern.string(wire.nextHopDestination);
  if (wire.tls != null) {
    const tls = wire.tls;
    backend.tls = {};
    if (tls.serverName !== '') backend.tls.serverName = intern.string(tls.serverName);
    if (tls.caPem !== '') backend.tls.caPem = intern.string(tls.caPem);
    if (tls.certPem !== '') backend.tls.certPem = intern.string(tls.certPem);
    if (tls.keyPem !== '') backend.tls.keyPem = intern.string(tls.keyPem);
  }
  return backend;
}

/** Returns the proxy's own constant, so the decoded copy of the string is dropped. */
function oneOf<T extends string>(allowed: readonly T[], value: string, what: string): T {
  const known = allowed.find((candidate) => candidate === value);
  if (known === undefined) {
    throw new RouteDecodeError(`${what} '${value}' is not one this proxy knows (${allowed.join(', ')}); upgrade the proxy`);
  }
  return known;
}

function positive(value: number, what: string): number {
  if (!(value > 0)) throw new RouteDecodeError(`${what} must be positive`);
  return value;
}
