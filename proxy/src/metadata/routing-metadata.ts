// Finds the destination a request names (X-Destination header, first path segment, Host, and
// `_x-destination` where a route enables it) and what remains of the URL once that is removed.

import type { CompiledRoute } from '../../../api/index.ts';
import { ProxyError } from '../errors.ts';
import type { RouteTable } from '../table/route-table.ts';

export type AddressingMode = 'header' | 'path' | 'host' | 'query';

export interface ResolvedDestination {
  route: CompiledRoute;
  mode: AddressingMode;
  /** Path segments after the routing segment, percent-decoded, for classification only. */
  segments: string[];
  /** The path to append to the backend base: `/Patient/1`, or `` for the base itself. */
  path: string;
  /** Raw query without the routing parameter and without `?`; `` when none is left. */
  query: string;
}

export const QUERY_PARAMETER = '_x-destination';
const DESTINATION_ID = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

interface Claim {
  mode: AddressingMode;
  route: CompiledRoute;
}

export function resolveDestination(
  table: RouteTable,
  rawUrl: string,
  hostHeader: string | undefined,
  destinationHeader: string | undefined,
): ResolvedDestination {
  let target = rawUrl;
  let host = hostHeader;
  // absolute-form (RFC 9112 3.2.2): take path and authority from the target itself.
  if (!target.startsWith('/')) {
    const m = /^https?:\/\/([^/?#]*)(.*)$/i.exec(target);
    if (m === null) throw new ProxyError('FHIRMESH_METADATA_MALFORMED', 'the request target is not a path or an absolute http(s) URL');
    host = m[1];
    target = m[2] === '' ? '/' : (m[2] ?? '/');
  }
  const queryAt = target.indexOf('?');
  const rawPath = queryAt < 0 ? target : target.slice(0, queryAt);
  let query = queryAt < 0 ? '' : target.slice(queryAt + 1);
  const hashAt = query.indexOf('#');
  if (hashAt >= 0) query = query.slice(0, hashAt);

  const segments = rawPath.split('/').slice(1);
  if (segments.length === 1 && segments[0] === '') segments.pop();
  for (const segment of segments) {
    // Dot segments would let `/<dest>/../x` climb out of the destination's base path.
    const lowered = segment.toLowerCase();
    if (lowered === '.' || lowered === '..' || lowered === '%2e' || lowered === '%2e%2e' || lowered === '.%2e' || lowered === '%2e.') {
      throw new ProxyError('FHIRMESH_METADATA_MALFORMED', 'the request path contains a dot segment (`.` or `..`); send a normalised FHIR URL');
    }
  }

  const claims: Claim[] = [];

  if (destinationHeader !== undefined) {
    // Node joins repeated headers with ", ": several equal values are one claim, different ones a conflict.
    const values = new Set(destinationHeader.split(',').map((v) => v.trim()));
    if (values.size !== 1) {
      throw new ProxyError('FHIRMESH_METADATA_CONFLICT', `X-Destination names ${values.size} different destinations; send exactly one`);
    }
    const [destinationId] = values as Set<string> & [string];
    claims.push({ mode: 'header', route: lookupNamed(table, destinationId, 'header', 'X-Destination') });
  }

  if (table.queryParameterEnabled && query !== '') {
    const { value, rest } = takeQueryParameter(query);
    if (value !== undefined) {
      claims.push({ mode: 'query', route: lookupNamed(table, value, 'query', QUERY_PARAMETER) });
      query = rest;
    }
  }

  let pathClaimed = false;
  const first = segments[0];
  if (first !== undefined && first !== '') {
    const route = table.byPathSegment(first);
    if (route !== undefined) {
      claims.push({ mode: 'path', route });
      pathClaimed = true;
    }
  }

  if (host !== undefined && host !== '') {
    const route = table.byHost(normaliseHost(host));
    if (route !== undefined) claims.push({ mode: 'host', route });
  }

  const [winner] = claims;
  if (winner === undefined) {
    throw new ProxyError(
      'FHIRMESH_DESTINATION_UNKNOWN',
      'no destination could be resolved from the request: send X-Destination, a path segment or a host that a FhirRoute declares',
    );
  }
  for (const claim of claims) {
    if (claim.route !== winner.route) {
      throw new ProxyError(
        'FHIRMESH_METADATA_CONFLICT',
        `the routing metadata names two destinations (${winner.route.destinationId} by ${winner.mode}, ${claim.route.destinationId} by ${claim.mode}); send one`,
      );
    }
  }

  const restSegments = pathClaimed ? segments.slice(1) : segments;
  const path = restSegments.length === 0 ? '' : '/' + restSegments.join('/');
  // `Patient/` classifies as `Patient`; the path itself is forwarded exactly as sent.
  const classified = restSegments.at(-1) === '' ? restSegments.slice(0, -1) : restSegments;
  // Destinations decode `%24count` to `$count`: rules must see what the destination will see, or an
  // encoded `$` would slip past an operation rule. The forwarded path stays exactly as sent.
  return { route: winner.route, mode: winner.mode, segments: classified.map(decodeSegment), path, query };
}

function lookupNamed(table: RouteTable, destinationId: string, mode: 'header' | 'query', carrier: string): CompiledRoute {
  if (!DESTINATION_ID.test(destinationId)) {
    throw new ProxyError('FHIRMESH_METADATA_MALFORMED', `${carrier} must be a destination id (lower-case letters, digits and '-', at most 63)`);
  }
  const route = table.byDestination(destinationId);
  const enabled = route !== undefined && (mode === 'header' ? route.addressing.header : route.addressing.queryParameter);
  if (!enabled) {
    // The id is syntactically safe (checked above), so naming it in the outcome leaks nothing.
    throw new ProxyError('FHIRMESH_DESTINATION_UNKNOWN', `destination '${destinationId}' given in ${carrier} is not known to this intermediary`);
  }
  return route;
}

/** Removes every `_x-destination` pair, keeping the rest of the query byte for byte. */
function takeQueryParameter(query: string): { value: string | undefined; rest: string } {
  const kept: string[] = [];
  const values = new Set<string>();
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    if (key === QUERY_PARAMETER) {
      values.add(eq < 0 ? '' : part.slice(eq + 1));
    } else {
      kept.push(part);
    }
  }
  if (values.size === 0) return { value: undefined, rest: query };
  if (values.size > 1) {
    throw new ProxyError('FHIRMESH_METADATA_CONFLICT', `${QUERY_PARAMETER} is given ${values.size} times with different values; send it once`);
  }
  const [value] = values as Set<string> & [string];
  return { value, rest: kept.join('&') };
}

function decodeSegment(segment: string): string {
  if (!segment.includes('%')) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** Host comparison ignores case and port (RFC 9110 4.2.3); IPv6 literals keep their brackets. */
export function normaliseHost(host: string): string {
  const lower = host.toLowerCase();
  if (lower.startsWith('[')) {
    const end = lower.indexOf(']');
    return end < 0 ? lower : lower.slice(0, end + 1);
  }
  const colon = lower.indexOf(':');
  const bare = colon < 0 ? lower : lower.slice(0, colon);
  return bare.endsWith('.') ? bare.slice(0, -1) : bare;
}
