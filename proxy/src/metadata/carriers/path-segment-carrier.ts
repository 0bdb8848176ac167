// `https://gw.example/<id>/Patient/1` (the path-segment addressing mode): the first segment
// names the destination and is removed before forwarding.

import type { Carrier } from './carrier.ts';

export const pathSegmentCarrier: Carrier = {
  mode: 'path',
  enabled: (route) => route.addressing.pathSegment,
  indexKeys: (route) => (route.addressing.pathSegment ? [route.destinationId] : []),
  claim(input, table) {
    const first = input.target.segments[0];
    if (first === undefined || first === '') return undefined;
    return table.byKey('path', first);
  },
  strip(parts) {
    parts.segments = parts.segments.slice(1);
    if (parts.encodedSeparatorAt.size > 0) {
      parts.encodedSeparatorAt = new Set([...parts.encodedSeparatorAt].filter((i) => i > 0).map((i) => i - 1));
    }
  },
};
