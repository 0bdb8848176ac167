// What every addressing mode is on the proxy side: a carrier that reads one kind of routing
// metadata, claims a route with it, and strips it from what is forwarded. One mode, one file.

import type { CompiledRoute } from '../../../../api/index.ts';
import type { RequestTarget } from '../request-target.ts';

export type AddressingMode = 'header' | 'path' | 'host' | 'query';

/** What a carrier may read of the request: the parsed target and the routing header. */
export interface RoutingInput {
  target: RequestTarget;
  /** Every X-Destination value, joined by `, ` as the HTTP parser joins repeated headers. */
  destinationHeader: string | undefined;
}

/** The table as carriers see it (RouteTable implements it): O(1) lookups only. */
export interface RouteLookup {
  byDestination(destinationId: string): CompiledRoute | undefined;
  /** The index this carrier's `indexKeys` built. */
  byKey(mode: AddressingMode, key: string): CompiledRoute | undefined;
  /** True when some route in the table enables this mode. */
  uses(mode: AddressingMode): boolean;
}

/** What will be forwarded; each carrier that claimed removes its own metadata from it. */
export interface ForwardedParts {
  /** Path segments after the destination's base, raw. */
  segments: string[];
  /** Encoded-separator flags, by index into `segments`; kept in step when a carrier removes a segment. */
  encodedSeparatorAt: ReadonlySet<number>;
  query: string;
}

export interface Carrier {
  readonly mode: AddressingMode;
  /** Whether the route accepts this carrier: part of the route's own addressing spec. */
  enabled(route: CompiledRoute): boolean;
  /** Keys under which the table indexes a route for this carrier; absent: looked up by destination id. */
  indexKeys?(route: CompiledRoute): readonly string[];
  /** The route this request names through this carrier; undefined when it names none this way. Throws ProxyError when malformed. */
  claim(input: RoutingInput, table: RouteLookup): CompiledRoute | undefined;
  /** Removes this carrier's metadata from what goes to the next hop. */
  strip(parts: ForwardedParts): void;
}

export const DESTINATION_ID = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
