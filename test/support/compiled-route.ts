// A CompiledRoute as compile() would hand it to the proxy, for unit tests of the request path that
// need a table without writing FhirRoute YAML: defaults everywhere, changed only where a test says.

import type { CompiledRoute } from '../../api/index.ts';

export function compiledRoute(
  destinationId: string,
  addressing: Partial<CompiledRoute['addressing']>,
  fields: Partial<Omit<CompiledRoute, 'destinationId' | 'addressing'>> = {},
): CompiledRoute {
  return {
    source: { namespace: 'default', name: destinationId, generation: 1 },
    destinationId,
    addressing: { header: false, pathSegment: false, hosts: [], queryParameter: false, ...addressing },
    backend: { baseUrl: `http://${destinationId}.internal/fhir` },
    rules: [],
    allowedMethods: ['GET'],
    maxRequestBodyBytes: 1024,
    allowEncodedPathSeparators: false,
    connectTimeoutMs: 1000,
    firstByteTimeoutMs: 1000,
    idleTimeoutMs: 1000,
    retryAttempts: 0,
    retryOn: [],
    rewriteResponseUrls: false,
    exportTo: [],
    ...fields,
  };
}
