// A compiled route survives the wire (encode → protobuf bytes → decode) unchanged, and a route a
// proxy cannot run is refused by decode with a message naming the route and the field.

import { describe, expect, it } from 'vitest';
import { decodeRoute, discoveryProto, encodeRoute, RouteDecodeError, type DiscoveryResponse__Output } from '../../../api/discovery/index.ts';
import type { CompiledRoute } from '../../../api/index.ts';

const route: CompiledRoute = {
  source: { namespace: 'payers', name: 'acme', generation: 7 },
  destinationId: 'acme-payer',
  addressing: { header: true, pathSegment: true, hosts: ['fhir.acme.example'], queryParameter: false },
  publicBaseUrl: 'https://gw.example.org/acme-payer',
  backend: { baseUrl: 'https://fhir.acme.internal/r4', nextHopDestination: 'acme-east', tls: { serverName: 'fhir.acme.internal', caPem: 'CA', certPem: 'CERT', keyPem: 'KEY' } },
  rules: [{ name: 'labs', resourceTypes: ['ServiceRequest'], interactions: ['create'], backend: { baseUrl: 'http://labs.internal/fhir' } }],
  allowedMethods: ['GET', 'POST'],
  maxRequestBodyBytes: 5 * 1024 * 1024 * 1024,
  allowEncodedPathSeparators: false,
  connectTimeoutMs: 2000,
  firstByteTimeoutMs: 30000,
  idleTimeoutMs: 60000,
  retryAttempts: 2,
  retryOn: ['connect-failure', 'unavailable'],
  rewriteResponseUrls: true,
  exportTo: ['*'],
};

function overTheWire(routes: ReturnType<typeof encodeRoute>[]): DiscoveryResponse__Output {
  const method = discoveryProto().fhirmesh.v1.RouteDiscovery.service.StreamRoutes;
  return method.responseDeserialize(method.responseSerialize({ versionInfo: 'v1', nonce: 'n1', fullSnapshot: true, upserted: routes }));
}

describe('route codec', () => {
  it('round-trips a compiled route through protobuf bytes', () => {
    const [wire] = overTheWire([encodeRoute(route)]).upserted;
    expect(decodeRoute(wire!)).toEqual(route);
  });

  it('round-trips a minimal route without optional parts', () => {
    const minimal: CompiledRoute = { ...route, publicBaseUrl: undefined, backend: { baseUrl: 'http://x.internal' }, rules: [], exportTo: [] };
    delete minimal.publicBaseUrl;
    const [wire] = overTheWire([encodeRoute(minimal)]).upserted;
    expect(decodeRoute(wire!)).toEqual(minimal);
  });

  it('refuses a retry condition this proxy does not know', () => {
    const [wire] = overTheWire([{ ...encodeRoute(route), retryOn: ['teapot'] }]).upserted;
    expect(() => decodeRoute(wire!)).toThrow(RouteDecodeError);
    expect(() => decodeRoute(wire!)).toThrow("route acme-payer retry condition 'teapot' is not one this proxy knows");
  });

  it('refuses a backend that is not an http(s) URL', () => {
    const [wire] = overTheWire([{ ...encodeRoute(route), backend: { baseUrl: 'ftp://x' } }]).upserted;
    expect(() => decodeRoute(wire!)).toThrow('route acme-payer: backend URL must be http or https');
  });
});
