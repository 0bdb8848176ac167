// The addressing modes the proxy understands, in the order their claims are reported. A new mode
// is a carrier file here plus its field in the CRD (see docs/architecture.md, "Where a change goes").

import type { Carrier } from './carrier.ts';
import { headerCarrier } from './header-carrier.ts';
import { hostCarrier } from './host-carrier.ts';
import { pathSegmentCarrier } from './path-segment-carrier.ts';
import { queryParameterCarrier } from './query-parameter-carrier.ts';

export const CARRIERS: readonly Carrier[] = [headerCarrier, queryParameterCarrier, pathSegmentCarrier, hostCarrier];

export type { AddressingMode, Carrier, ForwardedParts, RouteLookup, RoutingInput } from './carrier.ts';
export { QUERY_PARAMETER } from './query-parameter-carrier.ts';
