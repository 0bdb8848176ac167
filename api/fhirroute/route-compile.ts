// One FhirRoute on its own: validated, its references resolved (each lookup recorded, so a later
// compile can tell by asking again whether the answers moved), and compiled with defaults applied.
import { parseDurationMs } from './duration.ts';
import { DEFAULT_NAMESPACE } from './manifests.ts';
import { backendsOf } from './route-references.ts';
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

export type ResolvedRefsReason = 'ResolvedRefs' | 'BackendNotFound' | 'SecretNotFound' | 'FileNotFound';

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

export interface RefFailure {
  reason: Exclude<ResolvedRefsReason, 'ResolvedRefs'>;
  message: string;
}

/** One question compile asked a RefResolver, with the answer it got. */
export type RefLookup =
  | { readonly kind: 'file'; readonly path: string; readonly answer: string | undefined }
  | { readonly kind: 'secret'; readonly namespace: string; readonly name: string; readonly key: string; readonly answer: string | undefined }
  | { readonly kind: 'service'; readonly namespace: string; readonly name: string; readonly answer: boolean | undefined };

/**
 * Everything about one route that does not depend on the other routes: what validation and the
 * resolver said. Equal for the same route object and the same answers to its lookups, so reusable.
 */
export interface PreparedRoute {
  readonly route: FhirRoute;
  readonly namespace: string;
  /** namespace/name */
  readonly key: string;
  /** Validation's problems, joined; undefined for a valid route. */
  readonly invalidMessage: string | undefined;
  readonly refFailures: readonly RefFailure[];
  /** TLS material per backend: [0] is spec.backend, [i + 1] is spec.rules[i].backend. */
  readonly tls: readonly (CompiledTls | undefined)[];
  /** The resolver's answers this preparation rests on. */
  readonly lookups: readonly RefLookup[];
}

export function prepareRoute(route: FhirRoute, refs: RefResolver): PreparedRoute {
  const namespace = route.metadata.namespace ?? DEFAULT_NAMESPACE;
  const problems = validateFhirRoute(route);
  const lookups: RefLookup[] = [];
  const recorded = recordingResolver(refs, lookups);
  const refFailures: RefFailure[] = [];
  // Refs are checked on invalid routes too, so one status shows everything there is to fix.
  const tls = backendsOf(route).map(({ path, backend }) => resolveBackendRefs(namespace, backend, path, recorded, refFailures));
  return {
    route,
    namespace,
    key: `${namespace}/${route.metadata.name}`,
    invalidMessage: problems.length === 0 ? undefined : problems.map(describeProblem).join('; '),
    refFailures,
    tls,
    lookups,
  };
}

/** Whether `refs` answers every lookup as it was answered: then a preparation resting on them stands. */
export function sameAnswers(lookups: readonly RefLookup[], refs: RefResolver): boolean {
  for (const lookup of lookups) {
    switch (lookup.kind) {
      case 'file':
        if (refs.file(lookup.path) !== lookup.answer) return false;
        break;
      case 'secret':
        if (refs.secret(lookup.namespace, lookup.name, lookup.key) !== lookup.answer) return false;
        break;
      case 'service':
        if (refs.service(lookup.namespace, lookup.name)?.exists !== lookup.answer) return false;
        break;
    }
  }
  return true;
}

function recordingResolver(refs: RefResolver, lookups: RefLookup[]): RefResolver {
  return {
    file(path) {
      const answer = refs.file(path);
      lookups.push({ kind: 'file', path, answer });
      return answer;
    },
    secret(namespace, name, key) {
      const answer = refs.secret(namespace, name, key);
      lookups.push({ kind: 'secret', namespace, name, key, answer });
      return answer;
    },
    service(namespace, name) {
      const answer = refs.service(namespace, name);
      lookups.push({ kind: 'service', namespace, name, answer: answer?.exists });
      return answer;
    },
  };
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

/** The route as the proxy runs it; only for a valid route (validation admits every value used here). */
export function compileRoute(route: FhirRoute, namespace: string, tls: readonly (CompiledTls | undefined)[]): CompiledRoute {
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
