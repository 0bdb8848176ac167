// Turns FhirRoutes into the route table proxies run: validate, resolve references, settle conflicting
// claims (oldest wins), apply defaults and scope. Pure: every outside fact arrives through RefResolver.
import { createHash } from 'node:crypto';
import { canonicalJson } from '../../runtime/index.ts';
import { parseDurationMs } from './duration.ts';
import { DEFAULT_NAMESPACE } from './manifests.ts';
import { backendsOf, isExportedTo } from './route-references.ts';
import {
  DEFAULTS,
  INTERACTION_GROUPS,
  type BackendSpec,
  type CompiledBackend,
  type CompiledRoute,
  type CompiledRule,
  type CompiledTls,
  type FhirInteraction,
  type FhirRoute,
  type RouteTableSnapshot,
  type RuleSpec,
} from './types.ts';
import { describeProblem, validateFhirRoute } from './validate.ts';

/** What compile needs to know about the world; each answer is a lookup, never I/O started by compile. */
export interface RefResolver {
  /** Content of a PEM file (the loader has made the path absolute); undefined when it cannot be read. */
  file(path: string): string | undefined;
  /** One key of a Secret; undefined when the Secret or the key does not exist. */
  secret(namespace: string, name: string, key: string): string | undefined;
  /** Whether a Service exists; undefined when this resolver cannot see Services (standalone), so the name is trusted. */
  service(namespace: string, name: string): { exists: boolean } | undefined;
}

export type AcceptedReason = 'Accepted' | 'Invalid' | 'Conflicted';
export type ResolvedRefsReason = 'ResolvedRefs' | 'BackendNotFound' | 'SecretNotFound' | 'FileNotFound';

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

interface Entry {
  route: FhirRoute;
  key: string;
  namespace: string;
  /** The Accepted verdict, decided in stages: validity, then duplicates, then claims. */
  acceptedReason: AcceptedReason;
  acceptedMessage: string;
  refFailures: RefFailure[];
  /** TLS material per backend: [0] is spec.backend, [i + 1] is spec.rules[i].backend. */
  tls: (CompiledTls | undefined)[];
}

interface RefFailure {
  reason: Exclude<ResolvedRefsReason, 'ResolvedRefs'>;
  message: string;
}

export function compileRoutes(routes: FhirRoute[], refs: RefResolver, opts: CompileOptions = {}): CompileResult {
  const entries = routes.map((route): Entry => {
    const namespace = route.metadata.namespace ?? DEFAULT_NAMESPACE;
    const problems = validateFhirRoute(route);
    const refFailures: RefFailure[] = [];
    // Refs are checked on invalid routes too, so one status shows everything there is to fix.
    const tls = backendsOf(route).map(({ path, backend }) => resolveBackendRefs(namespace, backend, path, refs, refFailures));
    return {
      route,
      key: `${namespace}/${route.metadata.name}`,
      namespace,
      acceptedReason: problems.length === 0 ? 'Accepted' : 'Invalid',
      acceptedMessage: problems.map(describeProblem).join('; '),
      refFailures,
      tls,
    };
  });
  settleClaims(entries);

  const compiled: CompiledRoute[] = [];
  for (const entry of entries) {
    if (entry.acceptedReason !== 'Accepted' || entry.refFailures.length > 0) continue;
    compiled.push(compileRoute(entry));
  }
  compiled.sort((a, b) => compareText(a.destinationId, b.destinationId));
  const snapshot = { version: contentVersion(compiled), routes: compiled };

  return {
    snapshot: opts.proxyNamespace === undefined ? snapshot : scopeSnapshot(snapshot, opts.proxyNamespace),
    results: entries.map(resultOf),
  };
}

/**
 * The table proxies in `namespace` run, cut from an unscoped snapshot without compiling again:
 * the controller compiles once per change and scopes once per namespace.
 */
export function scopeSnapshot(snapshot: RouteTableSnapshot, namespace: string): RouteTableSnapshot {
  const routes = snapshot.routes.filter((route) => isExportedTo(route, namespace));
  return { version: contentVersion(routes), routes };
}

function resultOf(entry: Entry): RouteResult {
  const accepted = entry.acceptedReason === 'Accepted';
  const resolvedRefs = entry.refFailures.length === 0;
  const acceptedMessage = accepted ? `routes destination ${entry.route.spec.destination}` : entry.acceptedMessage;
  const resolvedRefsMessage = resolvedRefs ? 'all references resolved' : entry.refFailures.map((f) => f.message).join('; ');
  return {
    key: entry.key,
    generation: entry.route.metadata.generation ?? 0,
    accepted,
    acceptedReason: entry.acceptedReason,
    resolvedRefs,
    resolvedRefsReason: entry.refFailures[0]?.reason ?? 'ResolvedRefs',
    message: !accepted || resolvedRefs ? acceptedMessage : resolvedRefsMessage,
    acceptedMessage,
    resolvedRefsMessage,
  };
}

// ---- conflicts: each destination id and host belongs to one route, the oldest ----

/**
 * Decided over every valid route, whatever its scope, so a route's status does not depend on which
 * proxy asks. A route with unresolved refs keeps its claims: a missing Secret must not hand its
 * destination to a younger route. A loser claims nothing, so it blocks no one else.
 * No separate path-segment claim: the segment is the destination id, claimed already.
 */
function settleClaims(entries: Entry[]): void {
  const seenKeys = new Set<string>();
  for (const entry of entries) {
    if (seenKeys.has(entry.key) && entry.acceptedReason === 'Accepted') {
      entry.acceptedReason = 'Conflicted';
      entry.acceptedMessage = `${entry.key} is given more than once and only the first is used: remove or rename the other copy`;
    }
    seenKeys.add(entry.key);
  }

  const owners = new Map<string, Entry>();
  const contenders = entries.filter((e) => e.acceptedReason === 'Accepted').sort(olderFirst);
  for (const entry of contenders) {
    const claims = claimsOf(entry.route);
    const lost = claims.filter((claim) => owners.has(claim.id));
    if (lost.length === 0) {
      for (const claim of claims) owners.set(claim.id, entry);
      continue;
    }
    entry.acceptedReason = 'Conflicted';
    entry.acceptedMessage = lost
      .map((claim) => {
        const owner = owners.get(claim.id) as Entry;
        const why = ageOf(owner) < ageOf(entry) ? 'older' : 'same age, first by namespace/name';
        return `${claim.what} is already claimed by ${owner.key} (${why}); ${claim.fix}`;
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

/** creationTimestamp in ms; a route without one (a routes file) counts as newer than any with one. */
function ageOf(entry: Entry): number {
  const created = Date.parse(entry.route.metadata.creationTimestamp ?? '');
  return Number.isNaN(created) ? Number.POSITIVE_INFINITY : created;
}

function olderFirst(a: Entry, b: Entry): number {
  const byAge = ageOf(a) - ageOf(b);
  if (byAge !== 0 && !Number.isNaN(byAge)) return byAge;
  return compareText(a.namespace, b.namespace) || compareText(a.route.metadata.name, b.route.metadata.name);
}

// ---- references ----

/** Checks the backend's Service and fetches its TLS material; misses go to `failures`. */
function resolveBackendRefs(
  namespace: string,
  backend: Partial<BackendSpec> | undefined,
  path: string,
  refs: RefResolver,
  failures: RefFailure[],
): CompiledTls | undefined {
  const service = backend?.service;
  if (typeof service?.name === 'string') {
    const serviceNamespace = typeof service.namespace === 'string' ? service.namespace : namespace;
    if (refs.service(serviceNamespace, service.name)?.exists === false) {
      failures.push({
        reason: 'BackendNotFound',
        message: `${path}.service: Service ${serviceNamespace}/${service.name} does not exist: create it, or correct service.name and service.namespace`,
      });
    }
  }

  const tls = backend?.tls;
  if (typeof tls !== 'object' || tls === null) return undefined;
  const compiled: CompiledTls = {};
  if (typeof tls.serverName === 'string') compiled.serverName = tls.serverName;
  const fromFile = (field: 'caFile' | 'clientCertFile' | 'clientKeyFile', into: keyof CompiledTls): void => {
    const file = tls[field];
    if (typeof file !== 'string') return;
    const pem = refs.file(file);
    if (pem !== undefined) compiled[into] = pem;
    else {
      failures.push({
        reason: 'FileNotFound',
        message: `${path}.tls.${field}: cannot read ${file}: check the path (relative to the routes file) and that the proxy may read it`,
      });
    }
  };
  const fromSecret = (field: 'caSecretRef' | 'clientCertSecretRef', keys: [string, keyof CompiledTls][]): void => {
    const secret = tls[field];
    if (typeof secret !== 'string') return;
    for (const [key, into] of keys) {
      const value = refs.secret(namespace, secret, key);
      if (value !== undefined) compiled[into] = value;
      else {
        failures.push({
          reason: 'SecretNotFound',
          message: `${path}.tls.${field}: Secret ${namespace}/${secret} has no ${key}: create the Secret with a ${key} entry, or correct ${field} (a routes file without a cluster uses the tls.*File fields instead)`,
        });
      }
    }
  };
  fromFile('caFile', 'caPem');
  fromFile('clientCertFile', 'certPem');
  fromFile('clientKeyFile', 'keyPem');
  fromSecret('caSecretRef', [['ca.crt', 'caPem']]);
  fromSecret('clientCertSecretRef', [
    ['tls.crt', 'certPem'],
    ['tls.key', 'keyPem'],
  ]);
  return compiled;
}

// ---- the compiled form: defaults applied, nothing left for the proxy to work out ----

function compileRoute(entry: Entry): CompiledRoute {
  const { route, namespace, tls } = entry;
  const { spec } = route;
  return {
    source: { namespace, name: route.metadata.name, generation: route.metadata.generation ?? 0 },
    destinationId: spec.destination,
    addressing: {
      header: spec.addressing.header ?? false,
      pathSegment: spec.addressing.pathSegment ?? false,
      hosts: [...(spec.addressing.hosts ?? [])],
      queryParameter: spec.addressing.queryParameter ?? false,
    },
    ...(spec.publicBaseUrl === undefined ? {} : { publicBaseUrl: baseUrlOf(spec.publicBaseUrl) }),
    backend: compileBackend(namespace, spec.backend, tls[0]),
    rules: (spec.rules ?? []).map((rule, index) => compileRule(namespace, rule, index, tls[index + 1])),
    allowedMethods: [...(spec.allow?.methods ?? DEFAULTS.allowedMethods)],
    maxRequestBodyBytes: spec.allow?.maxRequestBodyBytes ?? DEFAULTS.maxRequestBodyBytes,
    allowEncodedPathSeparators: spec.allow?.encodedPathSeparators ?? false,
    connectTimeoutMs: durationMs(spec.timeouts?.connect, DEFAULTS.connectTimeoutMs),
    firstByteTimeoutMs: durationMs(spec.timeouts?.firstByte, DEFAULTS.firstByteTimeoutMs),
    idleTimeoutMs: durationMs(spec.timeouts?.idle, DEFAULTS.idleTimeoutMs),
    retryAttempts: spec.retries?.attempts ?? DEFAULTS.retryAttempts,
    retryOn: [...(spec.retries?.retryOn ?? DEFAULTS.retryOn)],
    rewriteResponseUrls: spec.rewriteResponseUrls ?? false,
    exportTo: [...(spec.exportTo ?? [namespace])],
  };
}

function compileRule(namespace: string, rule: RuleSpec, index: number, tls: CompiledTls | undefined): CompiledRule {
  const { resourceTypes, interactions, operations, methods } = rule.match;
  return {
    name: rule.name ?? `rule-${index}`,
    ...(resourceTypes && { resourceTypes: [...resourceTypes] }),
    ...(interactions && { interactions: expandInteractions(interactions) }),
    ...(operations && { operations: [...operations] }),
    ...(methods && { methods: [...methods] }),
    backend: compileBackend(namespace, rule.backend, tls),
  };
}

function compileBackend(namespace: string, backend: BackendSpec, tls: CompiledTls | undefined): CompiledBackend {
  return {
    baseUrl: backend.service === undefined ? baseUrlOf(backend.url ?? '') : serviceUrl(namespace, backend.service),
    ...(backend.nextHopDestination === undefined ? {} : { nextHopDestination: backend.nextHopDestination }),
    ...(tls === undefined ? {} : { tls }),
  };
}

function serviceUrl(namespace: string, service: NonNullable<BackendSpec['service']>): string {
  const path = withoutTrailingSlash(service.path ?? '');
  return `${service.scheme ?? 'http'}://${service.name}.${service.namespace ?? namespace}.svc:${service.port}${path}`;
}

/** Scheme, host, non-default port and path, no trailing slash: the form the proxy appends request paths to. */
function baseUrlOf(url: string): string {
  const parsed = new URL(url);
  return parsed.origin + withoutTrailingSlash(parsed.pathname);
}

function withoutTrailingSlash(path: string): string {
  return path.replace(/\/+$/, '');
}

function expandInteractions(interactions: readonly string[]): FhirInteraction[] {
  // The schema's enum admits only interaction codes and group names.
  const expanded = interactions.flatMap((name) => INTERACTION_GROUPS[name] ?? [name as FhirInteraction]);
  return [...new Set(expanded)];
}

function durationMs(text: string | undefined, fallbackMs: number): number {
  return (text === undefined ? undefined : parseDurationMs(text)) ?? fallbackMs;
}

/** A short hash of the routes in canonical JSON, so an unchanged table keeps its version. */
function contentVersion(routes: readonly CompiledRoute[]): string {
  return createHash('sha256').update(canonicalJson(routes)).digest('hex').slice(0, 16);
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
