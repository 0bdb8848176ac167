// Property: compile never throws, it reports. For any manifests (a rich valid route mutated at
// random places with hostile values, in batches that collide on keys, destinations and hosts, with
// any references present or missing), parseRouteManifests and compileRoutes return; each input
// route gets exactly one verdict, in order, and every refusal says why; the table holds exactly
// the accepted routes with resolved references, and the proxy can load it.

import fc from 'fast-check';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { compileRoutes, parseRouteManifests, validateFhirRoute, type FhirRoute, type RefResolver } from '../../../api/index.ts';
import { RouteTable } from '../../../proxy/src/table/route-table.ts';

/** A valid route using nearly every field, so mutations reach every part of validation and compile. */
const RICH_SPEC = {
  destination: 'acme-payer',
  addressing: { header: true, pathSegment: true, hosts: ['fhir.acme.example'], queryParameter: false },
  publicBaseUrl: 'https://gw.example/acme-payer',
  backend: { url: 'https://fhir.acme.internal/r4', nextHopDestination: 'acme-east', tls: { serverName: 'fhir.acme.internal', caFile: 'ca.pem', clientCertFile: 'c.pem', clientKeyFile: 'k.pem' } },
  rules: [
    {
      name: 'claims',
      match: { resourceTypes: ['Claim'], interactions: ['create', 'search'], methods: ['POST'] },
      backend: { service: { name: 'claims', namespace: 'payers', port: 8443, path: '/fhir', scheme: 'https' }, tls: { caSecretRef: 'claims-ca', clientCertSecretRef: 'claims-client' } },
    },
    { match: { operations: ['$submit'], interactions: ['operation'] }, backend: { url: 'http://pas.internal/fhir' } },
  ],
  allow: { methods: ['GET', 'POST'], maxRequestBodyBytes: 1048576, encodedPathSeparators: false },
  timeouts: { connect: '2s', firstByte: '30s', idle: '1m' },
  retries: { attempts: 2, retryOn: ['connect-failure', 'reset'] },
  rewriteResponseUrls: true,
  exportTo: ['payers', 'billing'],
};

function manifest(spec: unknown, metadata: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion: 'fhirmesh.io/v1alpha1', kind: 'FhirRoute', metadata: { name: 'acme-payer', namespace: 'payers', ...metadata }, spec };
}

/** Every path into the rich spec, interior and leaf: where a mutation may land. */
function pathsOf(value: unknown, at: (string | number)[] = []): (string | number)[][] {
  if (typeof value !== 'object' || value === null) return [at];
  const keys = Array.isArray(value) ? value.map((_, i) => i) : Object.keys(value);
  return [at, ...keys.flatMap((k) => pathsOf((value as Record<string | number, unknown>)[k], [...at, k]))];
}
const PATHS = pathsOf(RICH_SPEC).filter((p) => p.length > 0);

/** Values that break things: wrong types, edges of ranges, URLs WHATWG refuses, durations Go would overflow. */
const hostile = fc.oneof(
  fc.constantFrom<unknown>(
    undefined, null, '', 0, -1, 1.5, 2 ** 53, 1e21, true, false, [], {}, [null], [{}], 'x', '*', 'Acme_Payer', ' acme ',
    'https://a:99999/x', 'http://[::1', 'https://a@b/x', 'https://fhir.example.org/r4?x=1', 'ftp://a/b', 'https://%zz/', 'http://a:0/',
    '999999999999999m', '0ms', '1h', '-1s', '$x', '$', 'search', 'history', 'batch', 'GET', 'TRACE', 'connect-failure', 'on',
    'a'.repeat(300), '/fhir/../x', '\u0000', 'é', { name: 'x', port: 0 }, { name: 'x', port: 70000, scheme: 'gopher' }, ['*', 'payers'],
  ),
  fc.jsonValue({ maxDepth: 2 }),
  fc.anything({ maxDepth: 2, withNullPrototype: true, withObjectString: true }),
);

function setAt(target: unknown, path: readonly (string | number)[], value: unknown): void {
  let node = target as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null) return;
    node = next as Record<string | number, unknown>;
  }
  const last = path.at(-1) as string | number;
  // JSON and YAML have no sparse lists: a removed entry closes the gap, one past the end is appended.
  if (Array.isArray(node) && value === undefined) node.splice(Number(last), 1);
  else if (Array.isArray(node) && Number(last) > node.length) node.push(value);
  else if (value === undefined) delete node[last];
  else node[last] = value;
}

const specArb = fc.array(fc.tuple(fc.constantFrom(...PATHS), hostile), { maxLength: 4 }).map((mutations) => {
  const spec: unknown = structuredClone(RICH_SPEC);
  // Copied: the constants are shared between runs, and one placed inside another would make a cycle.
  for (const [path, value] of mutations) setAt(spec, path, value === undefined ? undefined : structuredClone(value));
  return spec;
});
const specOrAnything = fc.oneof({ arbitrary: specArb, weight: 8 }, { arbitrary: hostile, weight: 1 });
/** Small pools, so batches collide on namespace/name, destination and host. */
const metadataArb = fc.record({
  name: fc.constantFrom('acme-payer', 'labs', 'beta'),
  namespace: fc.constantFrom('payers', 'billing', 'default'),
  generation: fc.constantFrom(1, 2, 7),
  creationTimestamp: fc.constantFrom(undefined, '2026-01-01T00:00:00Z', '2026-06-01T00:00:00Z', 'not a time'),
});
const routesArb = fc.array(fc.tuple(specOrAnything, metadataArb).map(([spec, metadata]) => manifest(spec, metadata)), { minLength: 1, maxLength: 4 });
/** Any mix of references present and missing, and Services known, missing or unknowable (standalone). */
const refsArb: fc.Arbitrary<RefResolver> = fc
  .record({ files: fc.boolean(), secrets: fc.boolean(), services: fc.constantFrom<boolean | undefined>(true, false, undefined) })
  .map((world) => ({
    file: () => (world.files ? '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n' : undefined),
    secret: () => (world.secrets ? 'pem' : undefined),
    service: () => (world.services === undefined ? undefined : { exists: world.services }),
  }));

function expectReported(routes: FhirRoute[], refs: RefResolver, namespace: string | undefined): void {
  const { snapshot, results } = compileRoutes(routes, refs, namespace === undefined ? {} : { proxyNamespace: namespace });
  expect(results.map((r) => r.key)).toEqual(routes.map((r) => `${r.metadata.namespace ?? 'default'}/${r.metadata.name}`));
  for (const result of results) {
    expect(result.accepted).toBe(result.acceptedReason === 'Accepted');
    expect(result.resolvedRefs).toBe(result.resolvedRefsReason === 'ResolvedRefs');
    // A refusal always says what is wrong.
    if (!result.accepted) expect(result.acceptedMessage.trim()).not.toBe('');
    if (!result.resolvedRefs) expect(result.resolvedRefsMessage.trim()).not.toBe('');
    expect(result.message.trim()).not.toBe('');
  }
  const inTable = results.filter((r) => r.accepted && r.resolvedRefs).length;
  if (namespace === undefined) expect(snapshot.routes).toHaveLength(inTable);
  else expect(snapshot.routes.length).toBeLessThanOrEqual(inTable);
  // What the controller streams, a proxy can index.
  expect(() => new RouteTable(snapshot)).not.toThrow();
  for (const route of snapshot.routes) {
    for (const ms of [route.connectTimeoutMs, route.firstByteTimeoutMs, route.idleTimeoutMs]) expect(Number.isFinite(ms) && ms > 0).toBe(true);
    expect(() => new URL(route.backend.baseUrl)).not.toThrow();
    for (const rule of route.rules) expect(() => new URL(rule.backend.baseUrl)).not.toThrow();
  }
}

describe('compile, for any manifests', () => {
  it('starts from a valid route (so the mutations are what is refused)', () => {
    expect(validateFhirRoute(manifest(RICH_SPEC, {}))).toEqual([]);
  });

  it('never throws: each route gets one verdict, every refusal says why, the table is what was accepted', () => {
    let accepted = 0;
    let refused = 0;
    fc.assert(
      fc.property(routesArb, refsArb, fc.constantFrom(undefined, 'payers', 'billing'), (routes, refs, namespace) => {
        expectReported(routes as unknown as FhirRoute[], refs, namespace);
        const { results } = compileRoutes(routes as unknown as FhirRoute[], refs);
        accepted += results.filter((r) => r.accepted).length;
        refused += results.filter((r) => !r.accepted).length;
      }),
      { numRuns: 1_000 },
    );
    expect(accepted).toBeGreaterThan(100);
    expect(refused).toBeGreaterThan(500);
  });

  it('never throws on a routes file either: every document is a route or a located problem', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof({ arbitrary: routesArb.map((r) => r[0]), weight: 4 }, { arbitrary: hostile, weight: 1 }), { minLength: 1, maxLength: 3 }), refsArb, (documents, refs) => {
        const text = documents.map((d) => stringify(d ?? null)).join('---\n');
        const parsed = parseRouteManifests(text, 'routes.yaml');
        const located = new Set(parsed.problems.map((p) => p.document));
        // An empty document (null) is skipped, as kubectl skips it; any other is a route or a problem.
        expect(parsed.routes.length + located.size).toBeGreaterThanOrEqual(documents.filter((d) => d !== null && d !== undefined).length);
        for (const problem of parsed.problems) expect(problem.message.trim()).not.toBe('');
        expectReported(parsed.routes, refs, undefined);
      }),
      { numRuns: 300 },
    );
  });
});
