// The walk over what a FhirRoute names outside itself (its backends, and through them Services,
// Secrets and PEM files) and over where it is seen (exportTo). Read defensively: invalid routes and
// objects straight from the apiserver come here too, whatever shape they have.

import { DEFAULT_NAMESPACE } from './manifests.ts';
import type { BackendSpec, FhirRoute, RuleSpec } from './types.ts';

/** A backend with the field path that holds it, for messages (`spec.rules[2].backend`). */
export interface LocatedBackend {
  path: string;
  /** Undefined where the field is not an object. */
  backend: Partial<BackendSpec> | undefined;
}

/** spec.backend first, then each rule's backend in order: [0] is spec.backend, [i + 1] is spec.rules[i].backend. */
export function backendsOf(route: FhirRoute): LocatedBackend[] {
  const spec: Partial<FhirRoute['spec']> | undefined = route.spec;
  const rules: unknown = spec?.rules;
  return [
    { path: 'spec.backend', backend: objectOrUndefined(spec?.backend) },
    ...(Array.isArray(rules) ? (rules as (Partial<RuleSpec> | undefined)[]) : []).map((rule, index) => ({
      path: `spec.rules[${index}].backend`,
      backend: objectOrUndefined(rule?.backend),
    })),
  ];
}

/** What a route refers to, each once: Services and Secrets as namespace/name, files as written. */
export interface RouteReferences {
  services: string[];
  secrets: string[];
  files: string[];
}

export function referencesOf(route: FhirRoute): RouteReferences {
  const namespace = route.metadata?.namespace ?? DEFAULT_NAMESPACE;
  const services = new Set<string>();
  const secrets = new Set<string>();
  const files = new Set<string>();
  for (const { backend } of backendsOf(route)) {
    const service = backend?.service;
    if (typeof service?.name === 'string') services.add(`${typeof service.namespace === 'string' ? service.namespace : namespace}/${service.name}`);
    const tls = backend?.tls;
    for (const ref of [tls?.caSecretRef, tls?.clientCertSecretRef]) if (typeof ref === 'string') secrets.add(`${namespace}/${ref}`);
    for (const file of [tls?.caFile, tls?.clientCertFile, tls?.clientKeyFile]) if (typeof file === 'string') files.add(file);
  }
  return { services: [...services], secrets: [...secrets], files: [...files] };
}

/** Namespaces whose proxies see the route: exportTo, or its own namespace when absent ("*": all). */
export function exportScopeOf(route: FhirRoute): readonly string[] {
  const exportTo: unknown = route.spec?.exportTo;
  return Array.isArray(exportTo) ? (exportTo as string[]) : [route.metadata?.namespace ?? DEFAULT_NAMESPACE];
}

/** Whether proxies in `namespace` see a route with this scope (a compiled route's exportTo, or exportScopeOf). */
export function isExportedTo(route: { readonly exportTo: readonly string[] }, namespace: string): boolean {
  return route.exportTo.includes('*') || route.exportTo.includes(namespace);
}

function objectOrUndefined(value: unknown): Partial<BackendSpec> | undefined {
  return typeof value === 'object' && value !== null ? value : undefined;
}
