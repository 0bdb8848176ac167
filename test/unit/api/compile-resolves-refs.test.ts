// Pins how compileRoutes resolves what a route refers to (PEM files, Secrets, Services): a route with
// a missing reference stays accepted but out of the table, and its ResolvedRefs says what to create.
import { describe, expect, it } from 'vitest';
import { compileRoutes } from '../../../api/index.ts';
import { refsOf, route } from './route-fixtures.ts';

const HTTPS_URL = 'https://fhir.acme.internal/r4';

describe('compileRoutes resolves references', () => {
  it('reads PEM files through the resolver into the compiled backend', () => {
    const withFiles = route({
      backend: { url: HTTPS_URL, tls: { caFile: '/etc/fhirmesh/ca.pem', clientCertFile: '/etc/fhirmesh/gw.crt', clientKeyFile: '/etc/fhirmesh/gw.key' } },
    });
    const refs = refsOf({ files: { '/etc/fhirmesh/ca.pem': 'CA', '/etc/fhirmesh/gw.crt': 'CERT', '/etc/fhirmesh/gw.key': 'KEY' } });
    const { snapshot } = compileRoutes([withFiles], refs);
    expect(snapshot.routes[0]?.backend.tls).toEqual({ caPem: 'CA', certPem: 'CERT', keyPem: 'KEY' });
  });

  it('reports a file it cannot read as FileNotFound and leaves the route out of the table', () => {
    const { snapshot, results } = compileRoutes(
      [route({ backend: { url: HTTPS_URL, tls: { caFile: '/etc/fhirmesh/missing.pem' } } })],
      refsOf(),
    );
    expect(snapshot.routes).toEqual([]);
    const why =
      'spec.backend.tls.caFile: cannot read /etc/fhirmesh/missing.pem: check the path (relative to the routes file) and that the proxy may read it';
    expect(results[0]).toMatchObject({
      accepted: true,
      acceptedReason: 'Accepted',
      acceptedMessage: 'routes destination acme-payer',
      resolvedRefs: false,
      resolvedRefsReason: 'FileNotFound',
      resolvedRefsMessage: why,
      // The one line a person sees says what keeps the route out of the table.
      message: why,
    });
  });

  it('reports each missing Secret key, in the route\'s namespace, as SecretNotFound', () => {
    const { results } = compileRoutes(
      [route({ backend: { url: HTTPS_URL, tls: { clientCertSecretRef: 'gw-client' } } })],
      refsOf({ secrets: { 'payers/gw-client/tls.crt': 'CERT' } }),
    );
    expect(results[0]).toMatchObject({
      resolvedRefs: false,
      resolvedRefsReason: 'SecretNotFound',
      resolvedRefsMessage:
        'spec.backend.tls.clientCertSecretRef: Secret payers/gw-client has no tls.key: create the Secret with a tls.key entry, or correct clientCertSecretRef (a routes file without a cluster uses the tls.*File fields instead)',
    });
  });

  it('reports a Service the cluster does not have as BackendNotFound, in the namespace it names', () => {
    const { results } = compileRoutes(
      [
        route({
          rules: [{ match: { methods: ['POST'] }, backend: { service: { name: 'labs', namespace: 'labs', port: 8080 } } }],
        }),
      ],
      refsOf({ services: { 'labs/labs': false } }),
    );
    expect(results[0]).toMatchObject({
      resolvedRefs: false,
      resolvedRefsReason: 'BackendNotFound',
      resolvedRefsMessage:
        'spec.rules[0].backend.service: Service labs/labs does not exist: create it, or correct service.name and service.namespace',
    });
  });

  it('trusts a Service name when the resolver cannot see Services (standalone)', () => {
    const { snapshot, results } = compileRoutes([route({ backend: { service: { name: 'fhir', port: 8080 } } })], refsOf());
    expect(results[0]?.resolvedRefs).toBe(true);
    expect(snapshot.routes[0]?.backend.baseUrl).toBe('http://fhir.payers.svc:8080');
  });

  it('lists every missing reference and gives the first one\'s reason', () => {
    const { results } = compileRoutes(
      [
        route({
          backend: { url: HTTPS_URL, tls: { caFile: '/nope/ca.pem' } },
          rules: [{ match: { methods: ['POST'] }, backend: { service: { name: 'labs', port: 8080 } } }],
        }),
      ],
      refsOf({ services: { 'payers/labs': false } }),
    );
    expect(results[0]?.resolvedRefsReason).toBe('FileNotFound');
    expect(results[0]?.resolvedRefsMessage).toBe(
      'spec.backend.tls.caFile: cannot read /nope/ca.pem: check the path (relative to the routes file) and that the proxy may read it; ' +
        'spec.rules[0].backend.service: Service payers/labs does not exist: create it, or correct service.name and service.namespace',
    );
  });

  it('checks the references of an invalid route too, so its status shows everything to fix', () => {
    const { results } = compileRoutes(
      [route({ destination: 'Bad', backend: { url: HTTPS_URL, tls: { caSecretRef: 'acme-ca' } } })],
      refsOf(),
    );
    expect(results[0]).toMatchObject({
      acceptedReason: 'Invalid',
      resolvedRefs: false,
      resolvedRefsReason: 'SecretNotFound',
      message: results[0]?.acceptedMessage,
    });
    expect(results[0]?.message).toMatch(/^spec\.destination: "Bad" is not a DNS label/);
  });
});
