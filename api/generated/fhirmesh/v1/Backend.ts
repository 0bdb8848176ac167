// Original file: api/fhirmesh/v1/discovery.proto

import type { Tls as _fhirmesh_v1_Tls, Tls__Output as _fhirmesh_v1_Tls__Output } from '../../fhirmesh/v1/Tls';

export interface Backend {
  /**
   * Absolute http(s) URL of the FHIR base, no trailing slash.
   */
  'baseUrl'?: (string);
  /**
   * X-Destination sent to the next hop when it is another intermediary; "" for none.
   */
  'nextHopDestination'?: (string);
  'tls'?: (_fhirmesh_v1_Tls | null);
}

export interface Backend__Output {
  /**
   * Absolute http(s) URL of the FHIR base, no trailing slash.
   */
  'baseUrl': (string);
  /**
   * X-Destination sent to the next hop when it is another intermediary; "" for none.
   */
  'nextHopDestination': (string);
  'tls': (_fhirmesh_v1_Tls__Output | null);
}
