// Routing-metadata resolution against a compiled table: which destination, which mode, what is
// stripped before forwarding, and the 400/404 cases of the IG's error table.

import { describe, expect, it } from 'vitest';
import type { CompiledRoute } from '../../../api/index.ts';
import { parseRequestTarget } from '../../../proxy/src/metadata/request-target.ts';
import { resolveDestination as resolveFromInput } from '../../../proxy/src/metadata/routing-metadata.ts';
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
    allowEncodedPathSeparators: false,
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

/** Target parsing, then the carriers: what the proxy does with a request line, Host and X-Destination. */
function resolveDestination(lookup: RouteTable, url: string, host: string | undefined, header: string | undefined) {
  const target = parseRequestTarget(url, host === undefined ? [] : [host], '1.1', { maxUrlBytes: 8192 });
  return resolveFromInput(lookup, { target, destinationHeader: header });
}

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
    ['dot segment', '/acme/../labs/Patient', 'gw', undefined, 'FHIRMESH_PATH_UNSAFE'],
    ['encoded dot segment', '/acme/%2E%2E/Patient', 'gw', undefined, 'FHIRMESH_PATH_UNSAFE'],
    ['double-encoded dot segment', '/acme/%252e%252e/Patient', 'gw', undefined, 'FHIRMESH_PATH_UNSAFE'],
    ['dot segment encoded five times (one decoding past what is checked)', '/acme/%252525252e%252525252e/Patient', 'gw', undefined, 'FHIRMESH_PATH_UNSAFE'],
    ['dot segment with a path parameter', '/acme/..;x=1/Patient', 'gw', undefined, 'FHIRMESH_PATH_UNSAFE'],
    ['encoded slash', '/acme/..%2F..%2Fadmin', 'gw', undefined, 'FHIRMESH_PATH_UNSAFE'],
    ['encoded backslash', '/acme/Patient/1%5C..', 'gw', undefined, 'FHIRMESH_PATH_UNSAFE'],
    ['double-encoded slash', '/acme/Patient/%252F', 'gw', undefined, 'FHIRMESH_PATH_UNSAFE'],
    ['raw backslash', '/acme/Patient\\..\\x', 'gw', undefined, 'FHIRMESH_PATH_UNSAFE'],
    ['encoded NUL', '/acme/Patient/1%00.json', 'gw', undefined, 'FHIRMESH_PATH_UNSAFE'],
    ['doubled slash', '/acme//Patient', 'gw', undefined, 'FHIRMESH_PATH_UNSAFE'],
    ['stray percent', '/acme/Patient/50%', 'gw', undefined, 'FHIRMESH_REQUEST_MALFORMED'],
    ['fragment', '/acme/Patient/1#x', 'gw', undefined, 'FHIRMESH_REQUEST_MALFORMED'],
    ['userinfo in Host', '/Patient', 'fhir.acme.example:80@evil', undefined, 'FHIRMESH_REQUEST_MALFORMED'],
    ['userinfo in an absolute-form target', 'http://a@fhir.acme.example/Patient', 'gw', undefined, 'FHIRMESH_REQUEST_MALFORMED'],
    ['Host with a path', '/Patient', 'fhir.acme.example/x', undefined, 'FHIRMESH_REQUEST_MALFORMED'],
    ['Host port above 65535', '/Patient', 'fhir.acme.example:70000', undefined, 'FHIRMESH_REQUEST_MALFORMED'],
    ['no Host on HTTP/1.1', '/Patient', undefined, 'acme', 'FHIRMESH_REQUEST_MALFORMED'],
    ['asterisk-form', '*', 'fhir.acme.example', undefined, 'FHIRMESH_REQUEST_MALFORMED'],
    ['unknown header destination', '/Patient', 'gw', 'nobody', 'FHIRMESH_DESTINATION_UNKNOWN'],
    ['header for a route without header mode', '/Patient', 'gw', 'hidden', 'FHIRMESH_DESTINATION_UNKNOWN'],
    ['query for a route without query mode', '/Patient?_x-destination=acme', 'gw', undefined, 'FHIRMESH_DESTINATION_UNKNOWN'],
    ['no metadata at all', '/Patient/1', 'gw.example.org', undefined, 'FHIRMESH_DESTINATION_UNKNOWN'],
  ])('%s → %s', (_name, url, host, header, code) => {
    expect(errorCode(() => resolveDestination(table, url, host, header))).toBe(code);
  });

  it('refuses two Host headers instead of routing by the first', () => {
    expect(errorCode(() => parseRequestTarget('/Patient', ['fhir.acme.example', 'hidden.example'], '1.1', { maxUrlBytes: 8192 }))).toBe(
      'FHIRMESH_REQUEST_MALFORMED',
    );
  });

  it('forwards encoded separators only for a route that allows them', () => {
    const open = new RouteTable({ version: 'v2', routes: [{ ...route('acme', { pathSegment: true }), allowEncodedPathSeparators: true }] });
    const r = resolveDestination(open, '/acme/Binary/a%2Fb', 'gw', undefined);
    expect([r.path, r.segments]).toEqual(['/Binary/a%2Fb', ['Binary', 'a/b']]);
    // The routing segment itself never counts: only what is forwarded is checked.
    expect(errorCode(() => resolveDestination(open, '/acme/%2e%2e/x', 'gw', undefined))).toBe('FHIRMESH_PATH_UNSAFE');
  });

  it('refuses a URL longer than the limit with 414', () => {
    expect(errorCode(() => parseRequestTarget('/acme/' + 'a'.repeat(100), ['gw'], '1.1', { maxUrlBytes: 64 }))).toBe('FHIRMESH_URI_TOO_LONG');
  });
});
