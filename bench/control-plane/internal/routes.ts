// The mesh the benchmark builds: FhirRoutes spread evenly over namespaces ns-0 … ns-(n-1), every one
// forwarding to upstream A; a change points one route at a backend URL no route has had before, so
// whoever sees that URL has seen that change.

export interface RouteRef {
  readonly namespace: string;
  readonly name: string;
  /** Unique among all routes: the controller refuses duplicates as Conflicted. */
  readonly destinationId: string;
}

export function namespaceNames(count: number): string[] {
  return Array.from({ length: count }, (_, index) => `ns-${index}`);
}

/** `total` routes, dealt over the namespaces: route i lives in namespace i mod n. */
export function routeRefs(total: number, namespaces: readonly string[]): RouteRef[] {
  return Array.from({ length: total }, (_, index) => {
    const namespace = namespaces[index % namespaces.length] as string;
    const name = `route-${String(index).padStart(6, '0')}`;
    return { namespace, name, destinationId: `${namespace}-${name}` };
  });
}

export interface RouteSpec {
  readonly destination: string;
  readonly addressing: { readonly header: true };
  readonly backend: { readonly url: string };
}

export function routeSpec(route: RouteRef, backendUrl: string): RouteSpec {
  return { destination: route.destinationId, addressing: { header: true }, backend: { url: backendUrl } };
}

export function routeObject(route: RouteRef, backendUrl: string): Record<string, unknown> {
  return { apiVersion: 'fhirmesh.io/v1alpha1', kind: 'FhirRoute', metadata: { name: route.name, namespace: route.namespace }, spec: routeSpec(route, backendUrl) };
}

export function routeYaml(route: RouteRef, backendUrl: string): string {
  return `apiVersion: fhirmesh.io/v1alpha1
kind: FhirRoute
metadata: { name: ${route.name}, namespace: ${route.namespace} }
spec:
  destination: ${route.destinationId}
  addressing: { header: true }
  backend: { url: "${backendUrl}" }
`;
}

/** What a source under test must do: hold the routes, and change one's backend as an operator would. */
export interface MeshSource {
  readonly kind: 'directory' | 'kubernetes';
  /** Flags that point fhirmesh-controller at this source. */
  readonly controllerArgs: readonly string[];
  /** Environment the controller needs (none for the directory). */
  readonly controllerEnv: NodeJS.ProcessEnv;
  /** Time taken to put the routes in place (files written, or objects created through the API). */
  readonly setupMs: number;
  /** Points `route` at `backendUrl`; resolves when the edit is done (file renamed, PATCH answered). */
  edit(route: RouteRef, backendUrl: string): Promise<void>;
  /** Many edits as fast as the source takes them (bounded concurrency where it is an API). */
  editMany(edits: readonly (readonly [RouteRef, string])[]): Promise<void>;
  /** Process ids that belong to the source (kube-apiserver, etcd), for the report. */
  pids(): number[];
  stop(): Promise<void>;
}
