// Original file: api/fhirmesh/v1/discovery.proto

import type { Route as _fhirmesh_v1_Route, Route__Output as _fhirmesh_v1_Route__Output } from '../../fhirmesh/v1/Route';

export interface DiscoveryResponse {
  /**
   * The version the proxy runs once it has applied this response.
   */
  'versionInfo'?: (string);
  /**
   * Unique per response on a stream; echoed by the ACK or NACK.
   */
  'nonce'?: (string);
  /**
   * True: `upserted` is the whole table; anything not in it is removed. `base_version` is "".
   */
  'fullSnapshot'?: (boolean);
  /**
   * True: the proxy's table is already `version_info`; nothing to apply.
   */
  'current'?: (boolean);
  /**
   * For a delta: the version it applies on top of.
   */
  'baseVersion'?: (string);
  'upserted'?: (_fhirmesh_v1_Route)[];
  /**
   * Destination ids removed from the table.
   */
  'removed'?: (string)[];
}

export interface DiscoveryResponse__Output {
  /**
   * The version the proxy runs once it has applied this response.
   */
  'versionInfo': (string);
  /**
   * Unique per response on a stream; echoed by the ACK or NACK.
   */
  'nonce': (string);
  /**
   * True: `upserted` is the whole table; anything not in it is removed. `base_version` is "".
   */
  'fullSnapshot': (boolean);
  /**
   * True: the proxy's table is already `version_info`; nothing to apply.
   */
  'current': (boolean);
  /**
   * For a delta: the version it applies on top of.
   */
  'baseVersion': (string);
  'upserted': (_fhirmesh_v1_Route__Output)[];
  /**
   * Destination ids removed from the table.
   */
  'removed': (string)[];
}
