// `X-Destination: <id>` (the header addressing mode). The header itself is removed or replaced
// by the forwarder (forward/headers.ts), which owns every header sent upstream.

import type { CompiledRoute } from '../../../../api/index.ts';
import { ProxyError } from '../../errors.ts';
import { type Carrier, DESTINATION_ID, type RouteLookup, type RoutingInput } from './carrier.ts';

const headerEnabled = (route: CompiledRoute): boolean => route.addressing.header;

export const headerCarrier: Carrier = {
  mode: 'header',
  enabled: headerEnabled,
  claim(input: RoutingInput, table: RouteLookup): CompiledRoute | undefined {
    if (input.destinationHeader === undefined) return undefined;
    // Several equal values are one claim; different ones a conflict.
    const values = new Set(input.destinationHeader.split(',').map((v) => v.trim()));
    if (values.size !== 1) {
      throw new ProxyError('FHIRMESH_METADATA_CONFLICT', `X-Destination names ${values.size} different destinations; send exactly one`);
    }
    const [destinationId] = values as Set<string> & [string];
    return lookupNamed(table, destinationId, 'X-Destination', headerEnabled);
  },
  strip() {
    // X-Destination is dropped (or set to nextHopDestination) by upstreamRequestHeaders.
  },
};

/** Shared by the carriers that name a destination id outright (header, query parameter). */
export function lookupNamed(
  table: RouteLookup,
  destinationId: string,
  carrierName: string,
  enabled: (route: CompiledRoute) => boolean,
): CompiledRoute {
  if (!DESTINATION_ID.test(destinationId)) {
    throw new ProxyError('FHIRMESH_METADATA_MALFORMED', `${carrierName} must be a destination id (lower-case letters, digits and '-', at most 63)`);
  }
  const route = table.byDestination(destinationId);
  if (route === undefined || !enabled(route)) {
    // The id is syntactically safe (checked above), so naming it in the outcome leaks nothing.
    throw new ProxyError('FHIRMESH_DESTINATION_UNKNOWN', `destination '${destinationId}' given in ${carrierName} is not known to this intermediary`);
  }
  return route;
}
