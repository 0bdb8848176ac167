// Finds the destination a request names through the carriers of every addressing mode (header,
// query parameter, path segment, host), refuses disagreement, and says what is left to forward.

import type { CompiledRoute } from '../../../api/index.ts';
import { ProxyError } from '../errors.ts';
import { type AddressingMode, CARRIERS, type Carrier, type ForwardedParts, type RouteLookup, type RoutingInput } from './carriers/index.ts';
import { decodeSegmentForClassification } from './request-target.ts';

export interface ResolvedDestination {
  route: CompiledRoute;
  /** The mode of the first claim (reported in order: header, query, path, host). */
  mode: AddressingMode;
  /** Path segments after the routing segment, percent-decoded, for classification only. */
  segments: string[];
  /** The path to append to the backend base: `/Patient/1`, or `` for the base itself. */
  path: string;
  /** Raw query without the routing parameter and without `?`; `` when none is left. */
  query: string;
}

interface Claim {
  carrier: Carrier;
  route: CompiledRoute;
}

export function resolveDestination(table: RouteLookup, input: RoutingInput): ResolvedDestination {
  const claims: Claim[] = [];
  for (const carrier of CARRIERS) {
    const route = carrier.claim(input, table);
    if (route !== undefined) claims.push({ carrier, route });
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
        `the routing metadata names two destinations (${winner.route.destinationId} by ${winner.carrier.mode}, ${claim.route.destinationId} by ${claim.carrier.mode}); send one`,
      );
    }
  }

  const parts: ForwardedParts = {
    segments: input.target.segments,
    encodedSeparatorAt: input.target.encodedSeparatorAt,
    query: input.target.query,
  };
  for (const claim of claims) claim.carrier.strip(parts);
  const route = winner.route;
  if (parts.encodedSeparatorAt.size > 0 && !route.allowEncodedPathSeparators) {
    throw new ProxyError(
      'FHIRMESH_PATH_UNSAFE',
      `the request path has a percent-encoded '/' or '\\' (%2F, %5C) inside a segment, which destination ${route.destinationId} could read as a separator; the route can allow it with allow.encodedPathSeparators`,
    );
  }
  const restSegments = parts.segments;
  const path = restSegments.length === 0 ? '' : '/' + restSegments.join('/');
  // `Patient/` classifies as `Patient`; the path itself is forwarded exactly as sent.
  const classified = restSegments.at(-1) === '' ? restSegments.slice(0, -1) : restSegments;
  // Destinations decode `%24count` to `$count`: rules must see what the destination will see, or an
  // encoded `$` would slip past an operation rule. The forwarded path stays exactly as sent.
  return { route, mode: winner.carrier.mode, segments: classified.map(decodeSegmentForClassification), path, query: parts.query };
}
