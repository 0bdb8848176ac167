// Pins the compiled form of accepted routes: defaults from DEFAULTS, canonical URLs, Service backends
// as cluster URLs, rule groups expanded, and nothing left for the proxy to work out.
import { describe, expect, it } from 'vitest';
import { compileRoutes, DEFAULTS, type CompiledRoute } from '../../../api/index.ts';
import { refsOf, route } from './route-fixtures.ts';

describe('compileRoutes builds the table a proxy runs', () => {
  it('fills every default for a minimal route', () => {
    const { snapshot, results } = compileRoutes([route({}, { generation: 3 })], refsOf());
    expect(snapshot.routes).toEqual<CompiledRoute[]>([
      {
        source: { namespace: 'payers', name: 'acme-payer', generation: 3 },
        destinationId: 'acme-payer',
        addressing: { header: true, pathSegment: false, hosts: [], queryParameter: false },
        backend: { baseUrl: 'https://fhir.acme.internal/r4' },
        rules: [],
        allowedMethods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
        maxRequestBodyBytes: 10 * 1024 * 1024,
        allowEncodedPathSeparators: false,
        connectTimeoutMs: 2_000,
        firstByteTimeoutMs: 30_000,
        idleTimeoutMs: 60_000,
        retryAttempts: 0,
        retryOn: ['connect-failure'],
        rewriteResponseUrls: false,
        exportTo: ['payers'],
      },
    ]);
    expect(results).toEqual([
      {
        key: 'payers/acme-payer',
        generation: 3,
        accepted: true,
        acceptedReason: 'Accepted',
        resolvedRefs: true,
        resolvedRefsReason: 'ResolvedRefs',
        message: 'routes destination acme-payer',
        acceptedMessage: 'routes destination acme-payer',
        resolvedRefsMessage: 'all references resolved',
      },
    ]);
  });

  it('does not share arrays with DEFAULTS, so a consumer cannot change them', () => {
    const [compiled] = compileRoutes([route()], refsOf()).snapshot.routes;
    expect(compiled?.allowedMethods).not.toBe(DEFAULTS.allowedMethods);
    expect(compiled?.retryOn).not.toBe(DEFAULTS.retryOn);
  });

  it('compiles every field of a full route', () => {
    const full = route(
      {
        addressing: { header: true, pathSegment: true, hosts: ['acme-payer.gw.example.org', 'fhir.acme.example'], queryParameter: true },
        publicBaseUrl: 'https://gw.example.org:443/acme-payer/',
        backend: {
          url: 'https://fhir.acme.internal:443/r4/',
          nextHopDestination: 'acme-east',
          tls: { caSecretRef: 'acme-ca', serverName: 'fhir.acme.internal', clientCertSecretRef: 'gw-client' },
        },
        rules: [
          {
            match: { resourceTypes: ['ServiceRequest'], interactions: ['operation', 'search', 'search-type'], operations: ['$submit'] },
            backend: { service: { name: 'labs', namespace: 'labs', port: 8443, path: '/fhir/', scheme: 'https' } },
          },
          { name: 'history', match: { interactions: ['history'], methods: ['GET'] }, backend: { service: { name: 'archive', port: 8080 } } },
        ],
        allow: { methods: ['GET', 'POST'], maxRequestBodyBytes: 1024 },
        timeouts: { connect: '250ms', firstByte: '45s', idle: '2m' },
        retries: { attempts: 2, retryOn: ['connect-failure', 'unavailable'] },
        rewriteResponseUrls: true,
        exportTo: ['*'],
      },
      { generation: 7 },
    );
    const refs = refsOf({
      secrets: { 'payers/acme-ca/ca.crt': 'CA PEM', 'payers/gw-client/tls.crt': 'CERT PEM', 'payers/gw-client/tls.key': 'KEY PEM' },
    });
    expect(compileRoutes([full], refs).snapshot.routes).toEqual<CompiledRoute[]>([
      {
        source: { namespace: 'payers', name: 'acme-payer', generation: 7 },
        destinationId: 'acme-payer',
        addressing: { header: true, pathSegment: true, hosts: ['acme-payer.gw.example.org', 'fhir.acme.example'], queryParameter: true },
        publicBaseUrl: 'https://gw.example.org/acme-payer',
        backend: {
          baseUrl: 'https://fhir.acme.internal/r4',
          nextHopDestination: 'acme-east',
          tls: { serverName: 'fhir.acme.internal', caPem: 'CA PEM', certPem: 'CERT PEM', keyPem: 'KEY PEM' },
        },
        rules: [
          {
            name: 'rule-0',
            resourceTypes: ['ServiceRequest'],
            interactions: ['operation', 'search-type', 'search-system'],
            operations: ['$submit'],
            backend: { baseUrl: 'https://labs.labs.svc:8443/fhir' },
          },
          {
            name: 'history',
            interactions: ['history-instance', 'history-type', 'history-system'],
            methods: ['GET'],
            backend: { baseUrl: 'http://archive.payers.svc:8080' },
          },
        ],
        allowedMethods: ['GET', 'POST'],
        maxRequestBodyBytes: 1024,
        allowEncodedPathSeparators: false,
        connectTimeoutMs: 250,
        firstByteTimeoutMs: 45_000,
        idleTimeoutMs: 120_000,
        retryAttempts: 2,
        retryOn: ['connect-failure', 'unavailable'],
        rewriteResponseUrls: true,
        exportTo: ['*'],
      },
    ]);
  });

  it('orders the table by destination id, whatever the input order', () => {
    const { snapshot } = compileRoutes(
      [route({ destination: 'zeta' }, { name: 'z' }), route({ destination: 'alpha' }, { name: 'a' }), route({ destination: 'mid' }, { name: 'm' })],
      refsOf(),
    );
    expect(snapshot.routes.map((r) => r.destinationId)).toEqual(['alpha', 'mid', 'zeta']);
  });

  it('leaves invalid routes out and says why in the Accepted message', () => {
    const { snapshot, results } = compileRoutes(
      [route({ backend: { url: 'https://fhir.acme.internal/r4?tenant=1' }, timeouts: { idle: '0s' } })],
      refsOf(),
    );
    expect(snapshot.routes).toEqual([]);
    const why =
      'spec.backend.url: has a query (?...): remove it; a FHIR base URL has none, and each request brings its own; ' +
      'spec.timeouts.idle: must be longer than 0: a zero timeout fails every request; leave it out for the default (60000ms)';
    expect(results[0]).toMatchObject({ accepted: false, acceptedReason: 'Invalid', message: why, acceptedMessage: why });
  });
});
