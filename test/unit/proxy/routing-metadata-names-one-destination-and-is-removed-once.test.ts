// Properties of routing-metadata resolution (parseRequestTarget + resolveDestination) over random
// tables and requests: the outcome equals a model written from the IG's rules (every carrier
// present must agree; two destinations are refused), the metadata that named the destination is
// removed exactly once and nothing else is, no request is routed by the part of an authority
// before `@` or by one of two Hosts, and whatever arrives, the only failure is a ProxyError.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CompiledRoute } from '../../../api/index.ts';
import { isProxyError } from '../../../proxy/src/errors.ts';
import { DESTINATION_ID } from '../../../proxy/src/metadata/carriers/carrier.ts';
import { parseRequestTarget } from '../../../proxy/src/metadata/request-target.ts';
import { resolveDestination } from '../../../proxy/src/metadata/routing-metadata.ts';
import { RouteTable } from '../../../proxy/src/table/route-table.ts';
import { compiledRoute } from '../../support/compiled-route.ts';

const IDS = ['acme', 'labs', 'beta', 'gamma'] as const;
const QUERY = '_x-destination';
const LIMITS = { maxUrlBytes: 8192 };
const RUNS = { numRuns: 2_000 };

const addressing = fc.record({
  header: fc.boolean(),
  pathSegment: fc.boolean(),
  queryParameter: fc.boolean(),
  hosted: fc.boolean(),
});
/** One route per id, each with random addressing modes; hosts are `<id>.example`. */
const routesArb = fc.tuple(...IDS.map(() => addressing)).map((modes) =>
  IDS.map((id, i) => {
    const m = modes[i] as { header: boolean; pathSegment: boolean; queryParameter: boolean; hosted: boolean };
    return compiledRoute(id, { header: m.header, pathSegment: m.pathSegment, queryParameter: m.queryParameter, hosts: m.hosted ? [`${id}.example`] : [] });
  }),
);

/** Names a carrier may carry: table ids, an unknown id, and what is not an id at all. */
const named = fc.oneof({ arbitrary: fc.constantFrom(...IDS), weight: 5 }, { arbitrary: fc.constantFrom('nobody', 'Acme', 'a_b', ''), weight: 1 });
/** Segments after the metadata: FHIR words, ids (so a second `acme` must stay), encoded `$`. */
const segment = fc.constantFrom('Patient', '1', '_history', 'Observation', '$everything', '%24count', 'a.b', ...IDS);
const queryPair = fc.oneof(
  fc.tuple(fc.constant(QUERY), named).map(([k, v]) => `${k}=${v}`),
  fc.constant(QUERY),
  fc.constantFrom('name=J%C3%B6rg', '_count=5', 'x', 'x=', '_x-destinationx=acme', 'a=b=c', ''),
);

interface RequestShape {
  pathDestination: string | undefined;
  rest: string[];
  trailingSlash: boolean;
  headerValues: string[] | undefined;
  headerSeparator: string;
  queryPairs: string[] | undefined;
  host: string;
}

const requestArb: fc.Arbitrary<RequestShape> = fc.record({
  pathDestination: fc.option(named, { nil: undefined }),
  rest: fc.array(segment, { maxLength: 4 }),
  trailingSlash: fc.boolean(),
  headerValues: fc.option(fc.array(named, { minLength: 1, maxLength: 2 }), { nil: undefined, freq: 2 }),
  headerSeparator: fc.constantFrom(',', ', ', ' ,  '),
  queryPairs: fc.option(fc.array(queryPair, { maxLength: 3 }), { nil: undefined, freq: 2 }),
  host: fc.oneof(
    fc.constantFrom('gw.example', 'GW.example:8080', '127.0.0.1:9'),
    fc.tuple(fc.constantFrom(...IDS, 'nobody'), fc.constantFrom('', ':443', '.', '.:80'), fc.boolean()).map(
      ([id, suffix, upper]) => `${upper ? id.toUpperCase() : id}.example${suffix}`,
    ),
  ),
});

function targetOf(shape: RequestShape): { segments: string[]; url: string; query: string } {
  const segments = [...(shape.pathDestination !== undefined && shape.pathDestination !== '' ? [shape.pathDestination] : []), ...shape.rest];
  if (shape.trailingSlash && segments.length > 0) segments.push('');
  const query = shape.queryPairs === undefined ? '' : shape.queryPairs.join('&');
  const url = '/' + segments.join('/') + (shape.queryPairs === undefined ? '' : `?${query}`);
  return { segments, url, query };
}

type Outcome = { code: string } | { destination: string; path: string; query: string };

function resolveByProxy(table: RouteTable, shape: RequestShape): Outcome {
  const { url } = targetOf(shape);
  try {
    const target = parseRequestTarget(url, [shape.host], '1.1', LIMITS);
    const header = shape.headerValues?.join(shape.headerSeparator);
    const resolved = resolveDestination(table, { target, destinationHeader: header });
    return { destination: resolved.route.destinationId, path: resolved.path, query: resolved.query };
  } catch (err) {
    if (!isProxyError(err)) throw err;
    return { code: err.code };
  }
}

/** The IG's rules, written out on their own: claims in carrier order, each carrier's own refusals first. */
function resolveByModel(routes: readonly CompiledRoute[], shape: RequestShape): Outcome {
  const { segments, query } = targetOf(shape);
  const byId = (id: string): CompiledRoute | undefined => routes.find((r) => r.destinationId === id);
  const named = (value: string, enabled: (r: CompiledRoute) => boolean): CompiledRoute | { code: string } => {
    if (!DESTINATION_ID.test(value)) return { code: 'FHIRMESH_METADATA_MALFORMED' };
    const route = byId(value);
    return route !== undefined && enabled(route) ? route : { code: 'FHIRMESH_DESTINATION_UNKNOWN' };
  };
  const claims: { mode: string; route: CompiledRoute }[] = [];

  if (shape.headerValues !== undefined) {
    const values = new Set(shape.headerValues.join(shape.headerSeparator).split(',').map((v) => v.trim()));
    if (values.size !== 1) return { code: 'FHIRMESH_METADATA_CONFLICT' };
    const claim = named([...values][0] as string, (r) => r.addressing.header);
    if ('code' in claim) return claim;
    claims.push({ mode: 'header', route: claim });
  }
  const queryInUse = routes.some((r) => r.addressing.queryParameter);
  const keyOf = (pair: string): string => (pair.includes('=') ? pair.slice(0, pair.indexOf('=')) : pair);
  const queryValues = new Set(query.split('&').filter((p) => keyOf(p) === QUERY).map((p) => (p.includes('=') ? p.slice(p.indexOf('=') + 1) : '')));
  let queryClaimed = false;
  if (queryInUse && query !== '' && queryValues.size > 0) {
    if (queryValues.size > 1) return { code: 'FHIRMESH_METADATA_CONFLICT' };
    const claim = named([...queryValues][0] as string, (r) => r.addressing.queryParameter);
    if ('code' in claim) return claim;
    claims.push({ mode: 'query', route: claim });
    queryClaimed = true;
  }
  const first = segments[0];
  const byPath = first === undefined ? undefined : routes.find((r) => r.addressing.pathSegment && r.destinationId === first);
  if (byPath !== undefined) claims.push({ mode: 'path', route: byPath });
  const hostKey = shape.host.toLowerCase().replace(/:\d*$/, '').replace(/\.$/, '');
  const byHost = routes.find((r) => r.addressing.hosts.includes(hostKey));
  if (byHost !== undefined) claims.push({ mode: 'host', route: byHost });

  const destinations = new Set(claims.map((c) => c.route.destinationId));
  if (destinations.size === 0) return { code: 'FHIRMESH_DESTINATION_UNKNOWN' };
  if (destinations.size > 1) return { code: 'FHIRMESH_METADATA_CONFLICT' };
  // Exactly what named the destination goes: the first segment if it did, every routing pair if it did.
  const rest = byPath !== undefined ? segments.slice(1) : segments;
  return {
    destination: [...destinations][0] as string,
    path: rest.length === 0 ? '' : '/' + rest.join('/'),
    query: queryClaimed ? query.split('&').filter((p) => keyOf(p) !== QUERY).join('&') : query,
  };
}

function errorCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (!isProxyError(err)) throw err;
    return err.code;
  }
  return undefined;
}

describe('routing metadata, for any table and request', () => {
  it('resolves as the model does: one destination, its metadata removed exactly once, the rest kept byte for byte', () => {
    const seen = { routed: 0, pathStripped: 0, queryStripped: 0, conflicts: 0 };
    fc.assert(
      fc.property(routesArb, requestArb, (routes, shape) => {
        const expected = resolveByModel(routes, shape);
        expect(resolveByProxy(new RouteTable({ version: 't', routes }), shape)).toEqual(expected);
        if ('destination' in expected) {
          seen.routed++;
          if (expected.path !== targetOf(shape).url.split('?')[0] && targetOf(shape).segments.length > 0) seen.pathStripped++;
          if (expected.query !== targetOf(shape).query) seen.queryStripped++;
        } else if (expected.code === 'FHIRMESH_METADATA_CONFLICT') seen.conflicts++;
      }),
      RUNS,
    );
    // The generator reaches every branch the property is about, not only refusals.
    expect(seen.routed).toBeGreaterThan(200);
    expect(seen.pathStripped).toBeGreaterThan(50);
    // (The query parameter is the rarest shape the generator makes: about 1 % of runs.)
    expect(seen.queryStripped).toBeGreaterThan(5);
    expect(seen.conflicts).toBeGreaterThan(50);
  });

  it('refuses two carriers naming two different destinations, whichever carriers they are', () => {
    const carriers = ['header', 'query', 'path', 'host'] as const;
    fc.assert(
      fc.property(
        fc.constantFrom(...carriers),
        fc.constantFrom(...carriers),
        fc.shuffledSubarray([...IDS], { minLength: 2, maxLength: 2 }),
        fc.array(segment, { maxLength: 3 }),
        (carrierA, carrierB, [a, b], rest) => {
          // Every route speaks every mode, so each claim is valid on its own.
          const routes = IDS.map((id) => compiledRoute(id, { header: true, pathSegment: true, queryParameter: true, hosts: [`${id}.example`] }));
          const table = new RouteTable({ version: 't', routes });
          const names = new Map<string, string[]>();
          for (const [carrier, id] of [[carrierA, a], [carrierB, b]] as const) names.set(carrier, [...(names.get(carrier) ?? []), id as string]);
          const segments = [...(names.get('path') ?? []).slice(0, 1), ...rest];
          // Two path segments cannot both be the routing segment: the second stays in the path.
          const pathPairs = names.get('path')?.length === 2 ? [names.get('path')?.[1] as string] : [];
          const query = (names.get('query') ?? []).map((id) => `${QUERY}=${id}`).join('&');
          const hosts = names.get('host') ?? [];
          if (hosts.length === 2) {
            // One Host names one destination; two Host fields are refused before any routing.
            expect(errorCode(() => parseRequestTarget('/Patient', hosts.map((h) => `${h}.example`), '1.1', LIMITS))).toBe('FHIRMESH_REQUEST_MALFORMED');
            return;
          }
          if (pathPairs.length > 0) return;
          const url = '/' + segments.join('/') + (query === '' ? '' : `?${query}`);
          const target = parseRequestTarget(url, [hosts.length === 1 ? `${hosts[0]}.example` : 'gw.example'], '1.1', LIMITS);
          const header = names.get('header')?.join(', ');
          expect(errorCode(() => resolveDestination(table, { target, destinationHeader: header }))).toBe('FHIRMESH_METADATA_CONFLICT');
        },
      ),
      RUNS,
    );
  });
});

/** Authority text: host names of the table, ports, and the characters that split or confuse one. */
const authorityArb = fc
  .array(fc.constantFrom('acme.example', 'labs.example', 'evil', '@', ':', '80', ':443', '.', '[::1]', '%40', 'user', ':pw', ' ', '\\', '/', 'ACME.EXAMPLE'), { maxLength: 6 })
  .map((parts) => parts.join(''));

describe('authority, for any Host or absolute-form target', () => {
  const routes = [compiledRoute('acme', { hosts: ['acme.example'] }), compiledRoute('labs', { hosts: ['labs.example'] })];
  const table = new RouteTable({ version: 't', routes });

  it('never routes by the part before @: userinfo is refused, otherwise the whole authority is the key', () => {
    let routed = 0;
    fc.assert(
      fc.property(authorityArb, fc.boolean(), (text, absoluteForm) => {
        const url = absoluteForm ? `http://${text}/Patient` : '/Patient';
        const hosts = absoluteForm ? ['ignored.example'] : [text];
        // In a URL the authority ends at the first `/`, `?` or `#` (RFC 3986 3.2).
        const authority = absoluteForm ? (text.split(/[/?#]/)[0] as string) : text;
        let target;
        try {
          target = parseRequestTarget(url, hosts, '1.1', LIMITS);
        } catch (err) {
          if (!isProxyError(err)) throw err;
          if (authority.includes('@')) expect(err.code).toBe('FHIRMESH_REQUEST_MALFORMED');
          return;
        }
        expect(authority).not.toContain('@');
        const key = authority.toLowerCase().replace(/:\d*$/, '').replace(/\.$/, '');
        // An empty host (`:80`, `.`) is no key at all: nothing is indexed under it.
        expect(target.host ?? '').toBe(key);
        try {
          const resolved = resolveDestination(table, { target, destinationHeader: undefined });
          routed++;
          expect(resolved.route.addressing.hosts).toContain(key);
        } catch (err) {
          if (!isProxyError(err)) throw err;
        }
      }),
      RUNS,
    );
    expect(routed).toBeGreaterThan(20);
  });

  it('never routes by one of two Host fields, equal or not', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('acme.example', 'labs.example', 'gw.example', ''), { minLength: 2, maxLength: 4 }), (hosts) => {
        expect(errorCode(() => parseRequestTarget('/Patient', hosts, '1.1', LIMITS))).toBe('FHIRMESH_REQUEST_MALFORMED');
      }),
    );
  });
});

describe('any request line at all', () => {
  const routes = [
    compiledRoute('acme', { header: true, pathSegment: true, hosts: ['acme.example'], queryParameter: true }),
    compiledRoute('open', { pathSegment: true }, { allowEncodedPathSeparators: true }),
  ];
  const table = new RouteTable({ version: 't', routes });
  const urlText = fc.oneof(
    fc.string({ unit: fc.constantFrom(...'/acme?&=#%2e5cfF.;\\@:_x-destination'.split(''), 'open', 'http://', '%25', '%00', '\u00e9', '\r\n') }),
    fc.string({ unit: 'binary', maxLength: 64 }),
  );

  it('either resolves or fails with a ProxyError, never anything else', () => {
    fc.assert(
      fc.property(urlText, fc.array(fc.string({ maxLength: 20 }), { maxLength: 2 }), fc.option(fc.string({ maxLength: 20 }), { nil: undefined }), fc.constantFrom('1.0', '1.1'), (url, hosts, header, version) => {
        try {
          const target = parseRequestTarget(url, hosts, version, LIMITS);
          const resolved = resolveDestination(table, { target, destinationHeader: header });
          expect(resolved.path === '' || resolved.path.startsWith('/')).toBe(true);
        } catch (err) {
          expect(isProxyError(err), String(err)).toBe(true);
        }
      }),
      RUNS,
    );
  });
});
