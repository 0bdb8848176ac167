// Routing-metadata resolution against a compiled table: which destination, which mode, what is
// stripped before forwarding, and the 400/404 cases of the IG's error table.

import { describe, expect, it } from 'vitest';
import type { CompiledRoute } from '../../../api/index.ts';
import { resolveDestination } from '../../../proxy/src/metadata/routing-metadata.ts';
import { RouteTable } from '../../../proxy/src/table/route-table.ts';

function route(destinationId: string, addressing: Partial<CompiledRoute['addressing']>): CompiledRoute {
  return {
    source: { namespace: 'default', name: destinationId, generation: 1 },
    destinationId,
    addressing: { header: false, pathSegment: false, hosts: [], queryParameter: false, ...addressing },
    backend: { baseUrl: `http://${destinationId}.internal/fhir` },
    rules: [],
    allowedMethods: ['GET'],
    maxRequestBodyBytes: 1024,
    connectTimeoutMs: 1000,
    firstByteTimeoutMs: 1000,
    idleTimeoutMs: 1000,
    retryAttempts: 0,
    retryOn: [],
    rewriteResponseUrls: false,
    exportTo: [],
  };
}

const table = new RouteTable({
  version: 'v1',
  routes: [
    route('acme', { header: true, pathSegment: true, hosts: ['fhir.acme.example'] }),
    route('labs', { header: true, queryParameter: true }),
    route('hidden', { hosts: ['hidden.example'] }),
  ],
});

function errorCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

describe('resolveDestination', () => {
  it('takes the header and leaves the path alone', () => {
    const r = resolveDestination(table, '/Patient/1?x=1', 'gw', 'acme');
    expect([r.route.destinationId, r.mode, r.path, r.query, r.segments]).toEqual(['acme', 'header', '/Patient/1', 'x=1', ['Patient', '1']]);
  });

  it('strips the path segment', () => {
    const r = resolveDestination(table, '/acme/Patient/1', 'gw', undefined);
    expect([r.mode, r.path, r.segments]).toEqual(['path', '/Patient/1', ['Patient', '1']]);
  });

  it('resolves the base of a path-addressed destination to an empty path', () => {
    const r = resolveDestination(table, '/acme', 'gw', undefined);
    expect([r.path, r.segments]).toEqual(['', []]);
  });

  it('decodes segments for classification but forwards the path as sent', () => {
    const r = resolveDestination(table, '/acme/Observation/%24count', 'gw', undefined);
    expect([r.path, r.segments]).toEqual(['/Observation/%24count', ['Observation', '$count']]);
  });

  it('matches hosts without case or port', () => {
    expect(resolveDestination(table, '/metadata', 'FHIR.Acme.Example:443', undefined).route.destinationId).toBe('acme');
  });

  it('takes the host from an absolute-form target', () => {
    const r = resolveDestination(table, 'http://hidden.example/Patient', 'ignored', undefined);
    expect([r.route.destinationId, r.path]).toEqual(['hidden', '/Patient']);
  });

  it('removes every _x-destination pair and keeps the rest of the query byte for byte', () => {
    const r = resolveDestination(table, '/Patient?name=J%C3%B6rg&_x-destination=labs&_count=5', 'gw', undefined);
    expect([r.route.destinationId, r.query]).toEqual(['labs', 'name=J%C3%B6rg&_count=5']);
  });

  it('accepts repeated X-Destination with one value', () => {
    expect(resolveDestination(table, '/Patient', 'gw', 'acme, acme').route.destinationId).toBe('acme');
  });

  it.each([
    ['two header values', '/Patient', 'gw', 'acme, labs', 'FHIRMESH_METADATA_CONFLICT'],
    ['header and path disagree', '/acme/Patient', 'gw', 'labs', 'FHIRMESH_METADATA_CONFLICT'],
    ['host and header disagree', '/Patient', 'fhir.acme.example', 'labs', 'FHIRMESH_METADATA_CONFLICT'],
    ['bad header characters', '/Patient', 'gw', 'Acme_Payer', 'FHIRMESH_METADATA_MALFORMED'],
    ['dot segment', '/acme/../labs/Patient', 'gw', undefined, 'FHIRMESH_METADATA_MALFORMED'],
    ['encoded dot segment', '/acme/%2E%2E/Patient', 'gw', undefined, 'FHIRMESH_METADATA_MALFORMED'],
    ['unknown header destination', '/Patient', 'gw', 'nobody', 'FHIRMESH_DESTINATION_UNKNOWN'],
    ['header for a route without header mode', '/Patient', 'gw', 'hidden', 'FHIRMESH_DESTINATION_UNKNOWN'],
    ['query for a route without query mode', '/Patient?_x-destination=acme', 'gw', undefined, 'FHIRMESH_DESTINATION_UNKNOWN'],
    ['no metadata at all', '/Patient/1', 'gw.example.org', undefined, 'FHIRMESH_DESTINATION_UNKNOWN'],
  ])('%s → %s', (_name, url, host, header, code) => {
    expect(errorCode(() => resolveDestination(table, url, host, header))).toBe(code);
  });
});
