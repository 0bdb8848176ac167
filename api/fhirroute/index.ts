// Public surface of the FhirRoute API: the resource's types, its validation against the CRD, and the
// compiler from routes to the table proxies run. Proxy and controller import only what is named here.
export {
  API_GROUP,
  API_VERSION,
  DEFAULTS,
  FHIR_INTERACTIONS,
  HTTP_METHODS,
  INTERACTION_GROUPS,
  KIND,
  RETRY_ON,
  type AddressingSpec,
  type BackendSpec,
  type BackendTlsSpec,
  type CompiledBackend,
  type CompiledRoute,
  type CompiledRule,
  type CompiledTls,
  type Condition,
  type FhirInteraction,
  type FhirRoute,
  type FhirRouteSpec,
  type FhirRouteStatus,
  type HttpMethod,
  type ObjectMeta,
  type RequestInteraction,
  type RetryOn,
  type RouteSource,
  type RouteTableSnapshot,
  type RuleMatchSpec,
  type RuleSpec,
  type ServiceRef,
} from './types.ts';
export { parseDurationMs } from './duration.ts';
export { FHIRROUTE_CRD_PATH } from './schema.ts';
export { describeProblem, validateFhirRoute, type RouteProblem } from './validate.ts';
export {
  DEFAULT_NAMESPACE,
  formatManifestProblem,
  parseRouteManifests,
  type ManifestProblem,
  type ParsedManifests,
} from './manifests.ts';
export {
  Compilation,
  compileIncrementally,
  compileRoutes,
  contentVersion,
  routeFingerprint,
  scopeSnapshot,
  versionOfFingerprints,
  type AcceptedReason,
  type CompileOptions,
  type CompileResult,
  type RefResolver,
  type ResolvedRefsReason,
  type RouteResult,
} from './compile.ts';
export { backendsOf, exportScopeOf, isExportedTo, referencesOf, type LocatedBackend, type RouteReferences } from './route-references.ts';
