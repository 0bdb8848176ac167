// Builders for FhirRoute manifests in the api/ tests: one valid route, changed only where a test
// says so, keeps each test about the one field it is about.
import type { FhirRoute, FhirRouteSpec, ObjectMeta, RefResolver } from '../../../api/index.ts';

export function validSpec(): FhirRouteSpec {
  return {
    destination: 'acme-payer',
    addressing: { header: true },
    backend: { url: 'https://fhir.acme.internal/r4' },
  };
}

/** A valid route; `spec` fields given replace the valid ones, `metadata` fields are merged. */
export function route(spec: Partial<FhirRouteSpec> = {}, metadata: Partial<ObjectMeta> = {}): FhirRoute {
  return {
    apiVersion: 'fhirmesh.io/v1alpha1',
    kind: 'FhirRoute',
    metadata: { name: 'acme-payer', namespace: 'payers', ...metadata },
    spec: { ...validSpec(), ...spec },
  };
}

/** A manifest that the types would refuse, for tests of what validation says about it. */
export function rawRoute(spec: Record<string, unknown>, metadata: Record<string, unknown> = {}): unknown {
  return {
    apiVersion: 'fhirmesh.io/v1alpha1',
    kind: 'FhirRoute',
    metadata: { name: 'acme-payer', namespace: 'payers', ...metadata },
    spec: { ...validSpec(), ...spec },
  };
}

/** A RefResolver over fixed maps; services absent from the map are unknown (as in standalone mode). */
export function refsOf(world: {
  files?: Record<string, string>;
  secrets?: Record<string, string>;
  services?: Record<string, boolean>;
} = {}): RefResolver {
  return {
    file: (path) => world.files?.[path],
    secret: (namespace, name, key) => world.secrets?.[`${namespace}/${name}/${key}`],
    service: (namespace, name) => {
      const exists = world.services?.[`${namespace}/${name}`];
      return exists === undefined ? undefined : { exists };
    },
  };
}
